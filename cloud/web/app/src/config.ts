import { reactive } from 'vue';
import { api } from './api';
import { cityZone } from './time';
import type { TileSource } from './components/map-markers';

/** What the deployment configures for the pages (GET /api/web/config): the city's zone and the map's tiles. */

export const webConfig = reactive<{ loaded: boolean; timeZone: string; map: { tiles: TileSource | null; center: [number, number] | null; zoom: number | null } }>({
  loaded: false, timeZone: 'Asia/Shanghai', map: { tiles: null, center: null, zoom: null },
});

let pending: Promise<void> | null = null;

export function loadWebConfig(): Promise<void> {
  pending ??= api<{ timeZone?: string; map?: Partial<(typeof webConfig)['map']> }>('/api/web/config')
    .then((c) => {
      if (c.timeZone) { webConfig.timeZone = c.timeZone; cityZone.value = c.timeZone; }
      if (c.map) Object.assign(webConfig.map, c.map);
      webConfig.loaded = true;
    })
    .catch(() => { pending = null; });
  return pending;
}

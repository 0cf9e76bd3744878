import type { Registry } from 'prom-client';

/**
 * One read of a service's stats per Prometheus scrape: every mirrored metric's collect() reads
 * `current()`, which takes the stats once, and `scrape()` drops them before and after so the next
 * scrape reads afresh (the edge's health, the cloud's stats).
 */
export function scrapeSnapshot<T>(registry: Registry, read: () => T): { current(): T; scrape(): Promise<{ contentType: string; body: string }> } {
  let snapshot: T | undefined;
  return {
    current: () => (snapshot ??= read()),
    async scrape() {
      snapshot = undefined;
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        snapshot = undefined;
      }
    },
  };
}

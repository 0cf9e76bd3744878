import { onBeforeUnmount, ref } from 'vue';

/**
 * Photos picked (camera or files) before they are sent, each with a blob: URL for its preview;
 * the URLs are released when a photo is removed, the picks cleared, or the component unmounted.
 */
export function usePhotoPicks() {
  const files = ref<{ file: File; url: string }[]>([]);
  function onFiles(ev: Event): void {
    const input = ev.target as HTMLInputElement;
    for (const file of Array.from(input.files ?? [])) files.value.push({ file, url: URL.createObjectURL(file) });
    input.value = '';
  }
  function removeFile(i: number): void {
    const [f] = files.value.splice(i, 1);
    if (f) URL.revokeObjectURL(f.url);
  }
  function clear(): void {
    for (const f of files.value) URL.revokeObjectURL(f.url);
    files.value = [];
  }
  onBeforeUnmount(clear);
  return { files, onFiles, removeFile, clear };
}

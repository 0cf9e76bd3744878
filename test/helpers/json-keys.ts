/**
 * The keys that occur twice in one object of a JSON text (JSON.parse keeps the last silently).
 * A small scanner over strings and brackets; the text must be valid JSON.
 */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  const stack: { keys: Set<string>; isObject: boolean; expectKey: boolean }[] = [];
  let i = 0;
  const readString = (): string => {
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    const s = JSON.parse(text.slice(i, j + 1)) as string;
    i = j + 1;
    return s;
  };
  while (i < text.length) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '{' || c === '[') {
      stack.push({ keys: new Set(), isObject: c === '{', expectKey: c === '{' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      if (top?.isObject) top.expectKey = true;
      i++;
    } else if (c === '"') {
      const s = readString();
      if (top?.isObject && top.expectKey) {
        if (top.keys.has(s)) dups.push(s);
        top.keys.add(s);
        top.expectKey = false;
      }
    } else {
      i++;
    }
  }
  return dups;
}

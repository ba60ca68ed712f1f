/**
 * JSON kept in text columns: written and read here, by the repositories alone. Services see the
 * values (arrays, objects), never the text.
 */

/** An array column (ids, paths) that stores an empty array as NULL. */
export function idsColumn(ids: readonly string[] | undefined): string | null {
  return ids?.length ? JSON.stringify(ids) : null;
}

/** An array column's value: `[]` for NULL. */
export function readIds(text: string | null): string[] {
  return text ? (JSON.parse(text) as string[]) : [];
}

/** An object column, NULL for none. */
export function objectColumn(value: object | null | undefined): string | null {
  return value ? JSON.stringify(value) : null;
}

/** An object column's value, null for NULL. */
export function readObject<T extends object>(text: string | null): T | null {
  return text ? (JSON.parse(text) as T) : null;
}

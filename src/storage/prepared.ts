import { type Compilable, CompiledQuery } from 'kysely';

type Slot = { key: string } | { value: unknown };

/**
 * The hot writes' statements, built and compiled by Kysely once per shape and then bound to each
 * call's values. Building a query (immutable operation nodes) and compiling it costs more than
 * SQLite's own insert of a row (bench/findings.md); the SQL of a turn's rows, an answer's end or a
 * snapshot never changes, only their values. Each repository keeps its own (one database, one dialect).
 */
export class PreparedStatements {
  private readonly shapes = new Map<string, { sql: string; slots: Slot[] }>();

  /**
   * The statement `build` makes from `values`, compiled on the first call with this `shape` and these
   * keys, reused after. `build` must give every value to Kysely as a value (not to choose SQL).
   * Undefined values are left out, as Kysely leaves them out (a column not inserted takes its
   * default), so they make a shape of their own. Literals in `build` stay as compiled.
   */
  bind<V extends Record<string, unknown>>(shape: string, values: V, build: (placeholders: V) => Compilable): CompiledQuery {
    const keys = Object.keys(values).filter((key) => values[key] !== undefined);
    const id = `${shape}:${keys.join(',')}`;
    let compiled = this.shapes.get(id);
    if (!compiled) {
      const byPlaceholder = new Map<unknown, string>();
      const placeholders = {} as Record<string, unknown>;
      for (const key of keys) {
        const placeholder = { placeholder: key };
        byPlaceholder.set(placeholder, key);
        placeholders[key] = placeholder;
      }
      const query = build(placeholders as V).compile();
      const bound = new Set(query.parameters.map((parameter) => byPlaceholder.get(parameter)));
      const missing = keys.find((key) => !bound.has(key));
      if (missing) throw new Error(`prepared statement ${shape}: ${missing} is not one of its parameters`);
      compiled = {
        sql: query.sql,
        slots: query.parameters.map((parameter) => (byPlaceholder.has(parameter) ? { key: byPlaceholder.get(parameter)! } : { value: parameter })),
      };
      this.shapes.set(id, compiled);
    }
    return CompiledQuery.raw(
      compiled.sql,
      compiled.slots.map((slot) => ('key' in slot ? values[slot.key] : slot.value)),
    );
  }
}

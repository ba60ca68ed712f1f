import { Compilable, CompiledQuery } from 'kysely';

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
   * The statement `build` makes from `values`, compiled on the first call with this `shape` and
   * reused after: `build` must give every value of `values` to Kysely as a value (not to choose
   * SQL), and the same `shape` must always mean the same keys. Literals in `build` stay as compiled.
   */
  bind<V extends Record<string, unknown>>(shape: string, values: V, build: (placeholders: V) => Compilable): CompiledQuery {
    let compiled = this.shapes.get(shape);
    if (!compiled) {
      const keys = new Map<unknown, string>();
      const placeholders = {} as Record<string, unknown>;
      for (const key of Object.keys(values)) {
        const placeholder = { placeholder: key };
        keys.set(placeholder, key);
        placeholders[key] = placeholder;
      }
      const query = build(placeholders as V).compile();
      const bound = new Set(query.parameters.map((parameter) => keys.get(parameter)));
      const missing = [...keys.values()].find((key) => !bound.has(key));
      if (missing) throw new Error(`prepared statement ${shape}: ${missing} is not one of its parameters`);
      compiled = {
        sql: query.sql,
        slots: query.parameters.map((parameter) => (keys.has(parameter) ? { key: keys.get(parameter)! } : { value: parameter })),
      };
      this.shapes.set(shape, compiled);
    }
    return CompiledQuery.raw(
      compiled.sql,
      compiled.slots.map((slot) => ('key' in slot ? values[slot.key] : slot.value)),
    );
  }
}

/**
 * Declarations of a source file from its syntax tree (tree-sitter, as Aider's repo map and code
 * search engines read code): top-level functions, classes, types, and the methods of classes. Runs
 * in the repository map's worker thread only (declarations.worker.ts); grammars are the prebuilt
 * `.wasm` files of `tree-sitter-wasms`, loaded on first use, nothing downloaded.
 */
import { dirname, join } from 'node:path';
import Parser from 'web-tree-sitter';
import { clip, grammarOf } from './declarations';

/** Node types that declare something, per grammar family; `unwrap` holds what wraps a declaration. */
const DECLARES = new Set([
  // JavaScript / TypeScript
  'function_declaration',
  'generator_function_declaration',
  'class_declaration',
  'abstract_class_declaration',
  'interface_declaration',
  'type_alias_declaration',
  'enum_declaration',
  'internal_module',
  'method_definition',
  'abstract_method_signature',
  // Python
  'function_definition',
  'class_definition',
  // Go
  'method_declaration',
  'type_declaration',
  // Rust
  'function_item',
  'struct_item',
  'enum_item',
  'trait_item',
  'impl_item',
  'mod_item',
  'type_item',
  'macro_definition',
  'union_item',
  // Java / Kotlin
  'record_declaration',
  'constructor_declaration',
  'object_declaration',
  // C / C++
  'struct_specifier',
  'class_specifier',
  'enum_specifier',
  'namespace_definition',
  'type_definition',
  // Ruby
  'class',
  'module',
  'method',
  'singleton_method',
]);
/** Wrappers whose declaration is inside: `export …`, decorators, `template <…>`. */
const UNWRAP = new Set(['export_statement', 'decorated_definition', 'template_declaration', 'ambient_declaration']);
/** `const f = () => …` and friends count when they hold a function. */
const VARIABLES = new Set(['lexical_declaration', 'variable_declaration']);
const FUNCTION_VALUES = new Set(['arrow_function', 'function', 'function_expression', 'generator_function']);
/** Where a class keeps its members. */
const BODIES = new Set(['class_body', 'block', 'declaration_list', 'field_declaration_list', 'body_statement', 'enum_class_body', 'interface_body']);
const MEMBERS = new Set([
  'method_definition',
  'function_definition',
  'method_declaration',
  'constructor_declaration',
  'function_item',
  'function_declaration',
  'method',
  'singleton_method',
  'abstract_method_signature',
  'decorated_definition',
]);

const MAX_DECLARATIONS = 40;
/** A parse taking longer stops (the worker's own budget is the backstop). */
const PARSE_TIMEOUT_MICROS = 1_500_000;

let ready: Promise<void> | undefined;
const languages = new Map<string, Promise<Parser.Language>>();

/** Loads tree-sitter's runtime (once per worker). */
export function initTreeSitter(): Promise<void> {
  return (ready ??= Parser.init());
}

function language(grammar: string): Promise<Parser.Language> {
  let loaded = languages.get(grammar);
  if (!loaded) {
    const dir = join(dirname(require.resolve('tree-sitter-wasms/package.json')), 'out');
    loaded = Parser.Language.load(join(dir, `tree-sitter-${grammar}.wasm`));
    languages.set(grammar, loaded);
  }
  return loaded;
}

/** The file's declarations from its syntax tree; undefined when there is no grammar or the parse gave up. */
export async function treeSitterDeclarations(path: string, source: string): Promise<string[] | undefined> {
  const grammar = grammarOf(path);
  if (!grammar) return undefined;
  let parser: Parser;
  try {
    await initTreeSitter();
    parser = new Parser();
    parser.setLanguage(await language(grammar));
  } catch {
    return undefined;
  }
  try {
    parser.setTimeoutMicros(PARSE_TIMEOUT_MICROS);
    const tree = parser.parse(source);
    if (!tree) return undefined;
    try {
      const found = collect(tree.rootNode, source);
      // Broken code the parser could not recover from: the line patterns may still find something.
      return found.length === 0 && tree.rootNode.hasError() ? undefined : found;
    } finally {
      tree.delete();
    }
  } catch {
    return undefined;
  } finally {
    parser.delete();
  }
}

/** Top-level declarations and the members of classes, one level down; no recursion, so any depth is safe. */
function collect(root: Parser.SyntaxNode, source: string): string[] {
  const out: string[] = [];
  const add = (node: Parser.SyntaxNode, indent: string) => {
    if (out.length < MAX_DECLARATIONS) out.push(indent + signature(node, source));
  };
  for (const top of root.namedChildren) {
    if (out.length >= MAX_DECLARATIONS) break;
    const node = declarationIn(top);
    if (!node) continue;
    add(top.type === 'export_statement' ? top : node, '');
    const body = node.childForFieldName('body') ?? node.namedChildren.find((c) => BODIES.has(c.type));
    // Ruby's classes hold their methods directly.
    const members = body && BODIES.has(body.type) ? body.namedChildren : node.type === 'class' || node.type === 'module' ? node.namedChildren : [];
    for (const member of members) {
      if (out.length >= MAX_DECLARATIONS) break;
      const inner = declarationIn(member);
      if (inner && MEMBERS.has(inner.type)) add(inner, '  ');
    }
  }
  return out;
}

/** The declaring node a top-level statement holds, unwrapping `export`, decorators and templates. */
function declarationIn(node: Parser.SyntaxNode): Parser.SyntaxNode | undefined {
  let current: Parser.SyntaxNode | null = node;
  for (let depth = 0; current && depth < 3 && UNWRAP.has(current.type); depth++) {
    current =
      current.childForFieldName('declaration') ??
      current.childForFieldName('definition') ??
      current.namedChildren.find((c) => c.type !== 'decorator' && c.type !== 'comment' && c.type !== 'template_parameter_list') ??
      null;
  }
  if (!current) return undefined;
  if (DECLARES.has(current.type)) return current;
  if (VARIABLES.has(current.type)) {
    const declarator = current.namedChildren.find((c) => c.type === 'variable_declarator');
    const value = declarator?.childForFieldName('value');
    return value && FUNCTION_VALUES.has(value.type) ? current : undefined;
  }
  // C/C++: a function prototype (`int f(int);`) in a header.
  if (current.type === 'declaration' && current.namedChildren.some((c) => c.type === 'function_declarator')) return current;
  return undefined;
}

/** The node's text up to its body, on one line, shortened. */
function signature(node: Parser.SyntaxNode, source: string): string {
  const inner = declarationIn(node) ?? node;
  const value = VARIABLES.has(inner.type) ? inner.namedChildren.find((c) => c.type === 'variable_declarator')?.childForFieldName('value') : undefined;
  const holder = value ?? inner;
  const body = holder.childForFieldName('body') ?? holder.namedChildren.find((c) => BODIES.has(c.type) || c.type === 'function_body');
  const lineEnd = source.indexOf('\n', node.startIndex);
  // Up to the body; a node without one (a type, a prototype, a Ruby class) by its first line.
  const end = body && body.startIndex > node.startIndex ? body.startIndex : lineEnd >= 0 ? lineEnd : node.endIndex;
  // Bounded before any pattern runs: a signature is short, whatever the file holds.
  const text = source
    .slice(node.startIndex, Math.min(end, node.startIndex + 400))
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\s*[:{=]$/, '')
    .trim();
  return clip(text);
}

// Typed lint over our TypeScript (src, test, bench, examples). public/*.js is browser code with no
// build step and is not linted here. Run with `npm run lint`; `npm test` runs it first.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // test/hosts/* are built with tsc by their specs against the packed library (not in tsconfig.json).
  { ignores: ['dist/**', 'bench/out/**', 'coverage/**', '**/node_modules/**', 'public/**', '**/*.js', '**/*.mjs', '**/*.cjs', 'test/hosts/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // The example is checked against src/ through its own tsconfig (nest-chat-system → src/index.ts).
        project: ['./tsconfig.json', './examples/host-app/tsconfig.check.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Kept for the edges where a value really is unknown (fakes, raw rows, the bench's JSON); `any`
      // there is a choice made in review, not something a rule can judge.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // In a file with decorators the rule stands aside (emitDecoratorMetadata from tsconfig.json):
      // Nest resolves constructor parameters from the metadata, so those imports must stay values.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);

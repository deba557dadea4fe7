import tseslint from 'typescript-eslint';

const restricted = [
  { selector: 'TSEnumDeclaration', message: 'Use an as-const object and a union type.' },
  { selector: 'TSParameterProperty', message: 'Declare fields explicitly.' },
  { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'var/**', 'bench/out/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', ...restricted],
    },
  },
  // On the request path, an object literal with a getter or setter made per call kept everything
  // its closure reached alive through V8's young collections (docs/benchmarks.md, ninth gateway run).
  {
    files: ['src/listener/**/*.ts', 'src/gateway/**/*.ts', 'src/upstream/**/*.ts', 'src/router/**/*.ts', 'src/pool/**/*.ts', 'src/observability/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...restricted,
        { selector: ':function ObjectExpression > Property[kind=/^(get|set)$/]', message: 'Use a class with the accessor on its prototype: a literal with an accessor, made per call, keeps what it reaches alive through young collections.' },
      ],
    },
  },
  // The dashboard's browser modules are plain JavaScript outside the TypeScript project.
  { files: ['src/admin/dashboard/static/**/*.js'], extends: [tseslint.configs.disableTypeChecked], languageOptions: { parserOptions: { projectService: false } } },
);

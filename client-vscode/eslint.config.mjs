// Flat config: typescript-eslint's recommended rules on src/ and test/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'out/', 'node_modules/', '*.vsix', 'e2e/.work/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' },
    },
    rules: {
      eqeqeq: 'error',
      'no-console': ['error', { allow: ['log', 'error', 'warn'] }],
    },
  },
  {
    // The e2e runner is Node code that also ships functions into the page.
    files: ['e2e/**/*.mjs', 'scripts/**/*.mjs', 'test/**/*.mjs'],
    languageOptions: {
      globals: { fetch: 'readonly', window: 'readonly', document: 'readonly', performance: 'readonly', MutationObserver: 'readonly' },
    },
  },
);

// ESLint (flat config): typescript-eslint's recommended rules on every TypeScript and JavaScript
// file of the repository. `npm run lint`; `npm test` runs it before mocha.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build outputs (dist/ also holds the API report's scratch), installed packages, binaries,
    // and what training runs and device checks leave behind (all in .gitignore).
    ignores: ['dist/', 'build/', 'build-*/', 'node_modules/', 'prebuilds/', 'runs/', '.carry/'],
  },
  eslint.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      globals: { ...globals.node },
    },
  },
  {
    // The install scripts and tools are plain CommonJS: require() is how they load modules.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.mocha } },
  },
);

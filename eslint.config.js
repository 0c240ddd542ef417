import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The floors of src/ (docs/architecture.md): a folder may import its own floor's code and
 * any floor below it, never one above. Listed top to bottom; folders on one line share a
 * floor but do not import each other.
 */
const FLOORS = [
  ['cli'],
  ['commands'],
  ['reports'],
  ['runner'],
  ['model'],
  ['datasets', 'eval', 'tracking'],
  ['io'],
  ['errors'],
];

/** One `no-restricted-imports` block per folder, forbidding every folder it must not reach. */
function floorRules() {
  return FLOORS.flatMap((floor, level) =>
    floor.map((folder) => {
      const forbidden = [
        ...FLOORS.slice(0, level).flat(),
        ...floor.filter((other) => other !== folder),
      ];
      const allowed = FLOORS.slice(level + 1).flat();
      const files =
        folder === 'cli' || folder === 'errors' ? [`src/${folder}.ts`] : [`src/${folder}/**/*.ts`];
      return {
        files,
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                {
                  regex: `^(\\.\\.?/)+(.*/)?(${forbidden.join('|')})(/|\\.js$)`,
                  message: `src/${folder} may import only ${allowed.length ? allowed.map((f) => `src/${f}`).join(', ') : 'nothing of src'} and itself: imports point down the floors (docs/architecture.md, "Floors").`,
                },
              ],
            },
          ],
        },
      };
    }),
  );
}

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.venv/',
      '.venv-golden/',
      '.vcp-exp/',
      'reports/',
      'tests/fixtures/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...floorRules(),
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        fetch: 'readonly',
      },
    },
  },
);

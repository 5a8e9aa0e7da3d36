// Bundles the extension (and, with --tests, the unit tests) with esbuild.
// One CommonJS file, `vscode` left external: the .vsix then needs no node_modules.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');

const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'info' };

if (args.has('--tests')) {
  const entryPoints = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
  await esbuild.build({ ...common, entryPoints, outdir: 'out/test', sourcemap: 'inline', external: ['vscode'] });
} else {
  const options = {
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
    minify: production,
    sourcemap: !production,
    sourcesContent: false,
  };
  if (args.has('--watch')) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
  } else {
    await esbuild.build(options);
  }
}

// What the profile summaries (bench/profile-summary.mjs, bench/alloc-summary.mjs) share: their arguments and the
// short form of a script's URL.

/** `<file> [top] [--flag=value ...]` from the command line, or the usage line and exit 2 without a file. */
export function profileArgs(usage) {
  const args = process.argv.slice(2);
  const flags = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
  const [file, topText = '25'] = args.filter((a) => !a.startsWith('--'));
  if (!file) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return { file, top: Number(topText), flags };
}

/**
 * A script's URL relative to what a reader knows: node_modules/<package>/..., dist/ (or a build copied into
 * bench/results/<name>/), bench/. A package's own dist/ stays under its name.
 */
export function shortUrl(url) {
  const path = url.replace(/^file:\/\//, '');
  const inPackage = /\/node_modules\/(.*)$/.exec(path);
  if (inPackage) return `node_modules/${inPackage[1]}`;
  return path
    .replace(/^.*\/dist\//, 'dist/')
    .replace(/^.*\/bench\/results\/[^/]+\//, 'dist/')
    .replace(/^.*\/bench\//, 'bench/');
}

// Bundle the playground into ../server/modula/playground_assets/: playground.js and playground.css,
// minified, with every dependency (fonts included, as data URLs) inside, so the page needs no CDN.
import * as esbuild from "esbuild";
import { cpSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const out = fileURLToPath(new URL("../server/modula/playground_assets/", import.meta.url));

await esbuild.build({
  entryPoints: { playground: "src/index.jsx" },
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  outdir: out,
  jsx: "automatic",
  loader: { ".woff": "dataurl", ".woff2": "dataurl", ".ttf": "dataurl", ".svg": "dataurl" },
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none",
  logLevel: "info",
});

// The default tabs: the example operations of graphql/examples/, shipped beside the bundle so an
// installed package has them too (tests/test_playground.py checks the copies match).
rmSync(out + "examples", { recursive: true, force: true });
cpSync(fileURLToPath(new URL("../graphql/examples/", import.meta.url)), out + "examples", { recursive: true });

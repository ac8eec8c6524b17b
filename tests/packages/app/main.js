// Entry of the page-only cases (Rollup, esbuild, import map).
import { runPage } from './page.js';

runPage();

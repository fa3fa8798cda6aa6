// Runs a wasm32-wasip1 test binary under Node's WASI, i.e. in V8, the engine
// Envoy runs our module in. Cargo calls it as the target runner:
//   node wasi-runner.mjs path/to/test.wasm [libtest args...]
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env, exit } from 'node:process';

const [, , wasmPath, ...args] = argv;
const wasi = new WASI({ version: 'preview1', args: [wasmPath, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));

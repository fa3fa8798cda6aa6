// Runs a wasm32-wasip1 test binary under Node's WASI, i.e. in V8, the engine
// Envoy runs our module in. Cargo calls it as the target runner:
//   node wasi-runner.mjs path/to/test.wasm [libtest args...]
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env, exit } from 'node:process';

const [, , wasmPath, ...args] = argv;
const wasi = new WASI({ version: 'preview1', args: [wasmPath, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
// Examples (not built under cfg(test)) link the filter's proxy-wasm adapter, which
// imports Envoy's host functions from `env`: each is a function that throws, so
// nothing run here can call Envoy silently.
const hostStubs = new Proxy({}, {
  get: (_, name) => () => { throw new Error(`proxy-wasm host call ${String(name)} outside Envoy`); },
});
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env: hostStubs });
// The adapter also exports `_initialize`, which Node's `start` refuses beside
// `_start`: hand it only what a command needs.
const { memory, _start } = instance.exports;
exit(wasi.start({ exports: { memory, _start } }));

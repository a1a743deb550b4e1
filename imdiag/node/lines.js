"use strict";
/*
 * What master.js and client.js share: where the pinned npm packages are loaded from, the
 * version of a package as loaded, and the JSON lines they report to imdiag on stdout.
 */

const fs = require("fs");
const Module = require("module");
const path = require("path");

// The pinned npm packages: from the directory imdiag chose (IMDIAG_NODE_PREFIX, see
// imdiag/masters/node_packages.py), else next to this file (a clone after `make node`).
const prefix = process.env.IMDIAG_NODE_PREFIX;
const load = prefix ? Module.createRequire(path.join(prefix, "package.json")) : require;

/** The version of the package ``name`` resolves to (from ``from``, else from here). */
function packageVersion(name, from) {
  // Packages hide package.json behind "exports": walk up from the resolved entry point.
  let dir = path.dirname(load.resolve(name, from ? { paths: [from] } : undefined));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
      if (pkg.name === name && pkg.version) return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

/** One JSON line to the parent. */
function report(obj) {
  // fs.writeSync, not process.stdout: stdout on a pipe queues in memory once the pipe is full
  // (measured), so lines could be lost on exit. A blocking write keeps each line in dispatch
  // order and on the pipe before the process goes on; a slow parent slows it instead.
  const buf = Buffer.from(JSON.stringify(obj) + "\n", "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (err) {
      if (err.code === "EAGAIN") continue; // fd 1 made non-blocking by someone: retry
      process.exit(0); // EPIPE: the parent is gone
    }
  }
}

module.exports = { load, packageVersion, report };

// The suite runs on the Node 24 that `npm ci` installs from the `node` package.
const major = Number(process.versions.node.split('.')[0]);
console.log(`node ${process.version}`);
if (major !== 24) {
  console.error(`ringmaster needs Node 24 LTS; this is ${process.version}. Run it through npm scripts or bin/ringmaster.`);
  process.exit(1);
}

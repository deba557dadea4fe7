import { CaStore } from '../../src/ca/store.ts';

// A second process for the CA store tests, started with process.execPath:
//   allocate <dir> <count> <startAtMs>  allocate one serial at a time, each with its inventory line,
//                                        and print the serials as a JSON array of strings
//   hold <dir>                           take the lock, print "locked", and wait to be killed

const [mode, dir, countText, startText] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: store-worker.ts allocate|hold <dir> [count] [startAtMs]');
const store = new CaStore(dir, { lockTimeoutMs: 20_000 });

if (mode === 'hold') {
  await store.withLock(async () => {
    process.stdout.write('locked\n');
    await new Promise(() => setInterval(() => undefined, 60_000));
  });
} else if (mode === 'allocate') {
  const count = Number(countText ?? '1');
  // Every worker starts at the same instant, so their lock attempts overlap.
  const wait = Number(startText ?? '0') - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const serials: string[] = [];
  for (let i = 0; i < count; i++) {
    await store.withLock(async () => {
      const [serial] = await store.allocateSerials(1);
      if (serial === undefined) throw new Error('no serial');
      const now = new Date();
      await store.appendInventory([{ serial, notBefore: now, notAfter: now, subject: `/CN=worker-${process.pid}-${i}` }]);
      serials.push(serial.toString());
    });
  }
  process.stdout.write(`${JSON.stringify(serials)}\n`);
} else {
  throw new Error(`unknown mode ${mode ?? ''}`);
}

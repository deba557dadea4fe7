// Runs a local Puppet Server (Debian's puppetserver package) as a CA-less compiler behind
// ringmaster, from the directory `ringmaster compiler config` wrote, in a private config tree:
// nothing under /etc/puppet or /var/lib/puppet is read or changed. Used by scripts/quickstart.sh.
//
//   node scripts/local-compiler.ts start --config-dir DIR --tree DIR --code DIR [--heap 768m] [--timeout 300]
//   node scripts/local-compiler.ts stop --tree DIR
//
// `start` writes the tree, starts the JVM detached (log: <tree>/../puppetserver.log, pid file:
// <tree>/../puppetserver.pid), waits until Puppet Server says it is ready and exits, leaving the
// JVM running. If the pid file names a live Puppet Server, it is reused instead.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const packagedConf = '/etc/puppet/puppetserver/conf.d';
const packagedServices = '/etc/puppet/puppetserver/services.d';
const jar = '/usr/share/puppetserver/puppetserver.jar';
const ready = 'Puppet Server has successfully started and is now ready to handle requests';

// Logs to stdout only (redirected to the log file): the packaged logback.xml also writes /var/log/puppetserver.
const logback = `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSS} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

type Listen = { host: string; port: number; tls: boolean };

/** Where the generated webserver.conf makes Jetty listen. */
async function listenOf(configDir: string): Promise<Listen> {
  const text = await readFile(join(configDir, 'conf.d', 'webserver.conf'), 'utf8');
  const field = (key: string): string | undefined => new RegExp(`^\\s*${key}: "?([^"\\n]+)"?$`, 'm').exec(text)?.[1];
  const tls = field('ssl-port') !== undefined;
  const host = field(tls ? 'ssl-host' : 'host');
  const port = Number(field(tls ? 'ssl-port' : 'port'));
  if (host === undefined || !Number.isInteger(port)) throw new Error(`no listen address in ${configDir}/conf.d/webserver.conf`);
  return { host, port, tls };
}

async function writeTree(root: string, configDir: string, codeDir: string): Promise<void> {
  for (const d of ['conf.d', 'services.d', 'confdir', 'var', 'run', 'log', 'jruby-gems']) await mkdir(join(root, d), { recursive: true });
  // The packaged rest of conf.d (metrics, web routes, ca.conf), then the generated files over it.
  for (const f of await readdir(packagedConf)) await copyFile(join(packagedConf, f), join(root, 'conf.d', f));
  await copyFile(join(packagedServices, 'bootstrap.cfg'), join(root, 'services.d', 'bootstrap.cfg'));
  await copyFile(join(configDir, 'conf.d', 'webserver.conf'), join(root, 'conf.d', 'webserver.conf'));
  await copyFile(join(configDir, 'conf.d', 'auth.conf'), join(root, 'conf.d', 'auth.conf'));
  await copyFile(join(configDir, 'services.d', 'ca.cfg'), join(root, 'services.d', 'ca.cfg'));
  await copyFile(join(configDir, 'puppet.conf'), join(root, 'confdir', 'puppet.conf'));
  await writeFile(join(root, 'logback.xml'), logback);
  await writeFile(join(root, 'conf.d', 'global.conf'), `global: { logging-config: ${JSON.stringify(join(root, 'logback.xml'))} }\n`);
  // One JRuby instance: enough to try ringmaster out, and each extra one adds start time and memory.
  await writeFile(
    join(root, 'conf.d', 'puppetserver.conf'),
    `jruby-puppet: {
  ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
  gem-home: ${JSON.stringify(join(root, 'jruby-gems'))}
  gem-path: [\${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
  server-conf-dir: ${JSON.stringify(join(root, 'confdir'))}
  server-code-dir: ${JSON.stringify(codeDir)}
  server-var-dir: ${JSON.stringify(join(root, 'var'))}
  server-run-dir: ${JSON.stringify(join(root, 'run'))}
  server-log-dir: ${JSON.stringify(join(root, 'log'))}
  max-active-instances: 1
}
http-client: {}
profiler: {}
`,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid in the pid file when that process is still a Puppet Server JVM. */
async function runningPid(pidFile: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('puppetserver') ? pid : undefined;
}

function status(l: Listen): Promise<string | undefined> {
  return new Promise((done) => {
    const req = request({ host: l.host, port: l.port, path: '/status/v1/simple', timeout: 5_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => done(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => done(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(undefined));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function tail(file: string, lines = 40): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');
}

async function start(configDir: string, root: string, codeDir: string, heap: string, timeoutS: number): Promise<void> {
  const base = dirname(root);
  const logFile = join(base, 'puppetserver.log');
  const pidFile = join(base, 'puppetserver.pid');
  const listen = await listenOf(configDir);
  const where = `${listen.tls ? 'https' : 'http'}://${listen.host}:${listen.port}`;

  const existing = await runningPid(pidFile);
  if (existing !== undefined) {
    console.log(`local compiler already running (pid ${existing}, ${where})`);
    return;
  }
  if (!listen.tls && (await status(listen)) !== undefined) {
    throw new Error(`something else already answers on ${where}; choose another compiler port`);
  }

  await writeTree(root, configDir, codeDir);
  const out = openSync(logFile, 'a');
  const child = spawn(
    '/usr/bin/java',
    [
      `-Xms${heap}`,
      `-Xmx${heap}`,
      // Start-up speed over peak speed: the C1 compiler alone and one GC thread roughly halve the
      // time to "ready" on a small machine.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger',
      '-Djruby.lib=/usr/share/jruby/lib',
      `-Dlogback.configurationFile=${join(root, 'logback.xml')}`,
      '-jar',
      jar,
      '--config',
      join(root, 'conf.d'),
      '--bootstrap-config',
      join(root, 'services.d'),
    ],
    { cwd: '/usr/share/puppetserver', detached: true, stdio: ['ignore', out, out], env: { ...process.env, HOME: root } },
  );
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start /usr/bin/java');
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  child.unref();
  await writeFile(pidFile, `${pid}\n`);
  console.log(`starting the local compiler (pid ${pid}, ${where}); log: ${logFile}`);

  const logStart = Date.now();
  const deadline = logStart + timeoutS * 1000;
  // Only this run's part of the log counts: an earlier run may have logged "ready" too.
  const before = (await readFile(logFile, 'utf8').catch(() => '')).length;
  for (;;) {
    if (exited !== undefined || !alive(pid)) {
      await rm(pidFile, { force: true });
      throw new Error(`the local compiler stopped (${exited ?? 'gone'}); last lines of ${logFile}:\n${await tail(logFile)}`);
    }
    const log = (await readFile(logFile, 'utf8').catch(() => '')).slice(before);
    if (log.includes(ready)) break;
    if (Date.now() > deadline) throw new Error(`the local compiler is not ready after ${timeoutS} s (pid ${pid} left running); last lines of ${logFile}:\n${await tail(logFile)}`);
    await sleep(500);
  }
  if (!listen.tls) {
    const s = await status(listen);
    if (s !== 'running') throw new Error(`${where}/status/v1/simple answered ${s ?? 'nothing'}`);
  }
  console.log(`local compiler ready after ${Math.round((Date.now() - logStart) / 1000)} s`);
}

async function stop(root: string): Promise<void> {
  const pidFile = join(dirname(root), 'puppetserver.pid');
  const pid = await runningPid(pidFile);
  if (pid === undefined) {
    console.log('local compiler not running');
    await rm(pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (alive(pid) && Date.now() < deadline) await sleep(250);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  await rm(pidFile, { force: true });
  console.log(`local compiler stopped (pid ${pid})`);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      'config-dir': { type: 'string' },
      tree: { type: 'string' },
      code: { type: 'string' },
      heap: { type: 'string', default: '768m' },
      timeout: { type: 'string', default: '300' },
    },
  });
  const need = (name: 'config-dir' | 'tree' | 'code'): string => {
    const v = values[name];
    if (v === undefined) throw new Error(`--${name} is required`);
    return resolve(v);
  };
  switch (positionals[0]) {
    case 'start':
      return start(need('config-dir'), need('tree'), need('code'), values.heap, Number(values.timeout));
    case 'stop':
      return stop(need('tree'));
    default:
      throw new Error('usage: local-compiler.ts start --config-dir DIR --tree DIR --code DIR [--heap 768m] [--timeout 300] | stop --tree DIR');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

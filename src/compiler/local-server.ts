import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// Running Debian's puppetserver package from a private config tree: nothing under /etc/puppet or
// /var/lib/puppet is read or changed, so several can run side by side. Used by the quickstart's
// local compiler (scripts/local-compiler.ts) and by the tests that start real compilers.

export const packagedConf = '/etc/puppet/puppetserver/conf.d';
export const packagedServices = '/etc/puppet/puppetserver/services.d';
export const jar = '/usr/share/puppetserver/puppetserver.jar';
export const readyLine = 'Puppet Server has successfully started and is now ready to handle requests';

/** Start-up speed over peak speed: the C1 compiler alone and one GC thread halve the time to "ready" on two cores. */
export const fastStartFlags = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];

// Logs to stdout only: the packaged logback.xml also writes /var/log/puppetserver.
export const logback = `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSS} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

export type Listen = { host: string; port: number; tls: boolean };

/** Where a generated webserver.conf makes Jetty listen. */
export async function listenOf(configDir: string): Promise<Listen> {
  const text = await readFile(join(configDir, 'conf.d', 'webserver.conf'), 'utf8');
  const field = (key: string): string | undefined => new RegExp(`^\\s*${key}: "?([^"\\n]+)"?$`, 'm').exec(text)?.[1];
  const tls = field('ssl-port') !== undefined;
  const host = field(tls ? 'ssl-host' : 'host');
  const port = Number(field(tls ? 'ssl-port' : 'port'));
  if (host === undefined || !Number.isInteger(port)) throw new Error(`no listen address in ${configDir}/conf.d/webserver.conf:\n${text}`);
  return { host, port, tls };
}

/** puppetserver.conf for a tree under `root`; one JRuby instance keeps start time and memory small. */
export function puppetserverConf(root: string, codeDir: string): string {
  return `jruby-puppet: {
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
`;
}

/** The directories, logback.xml and global.conf every private tree needs, and the packaged conf.d. */
export async function writeBaseTree(root: string, codeDir: string): Promise<void> {
  for (const d of ['conf.d', 'services.d', 'confdir', 'var', 'run', 'log', 'jruby-gems']) await mkdir(join(root, d), { recursive: true });
  for (const f of await readdir(packagedConf)) await copyFile(join(packagedConf, f), join(root, 'conf.d', f));
  await writeFile(join(root, 'logback.xml'), logback);
  await writeFile(join(root, 'conf.d', 'global.conf'), `global: { logging-config: ${JSON.stringify(join(root, 'logback.xml'))} }\n`);
  await writeFile(join(root, 'conf.d', 'puppetserver.conf'), puppetserverConf(root, codeDir));
}

/** A compiler's tree: the base, then the files `ringmaster compiler config` wrote in `configDir` over it. */
export async function writeCompilerTree(root: string, configDir: string, codeDir: string): Promise<void> {
  await writeBaseTree(root, codeDir);
  await copyFile(join(packagedServices, 'bootstrap.cfg'), join(root, 'services.d', 'bootstrap.cfg'));
  await copyFile(join(configDir, 'conf.d', 'webserver.conf'), join(root, 'conf.d', 'webserver.conf'));
  await copyFile(join(configDir, 'conf.d', 'auth.conf'), join(root, 'conf.d', 'auth.conf'));
  await copyFile(join(configDir, 'services.d', 'ca.cfg'), join(root, 'services.d', 'ca.cfg'));
  await copyFile(join(configDir, 'puppet.conf'), join(root, 'confdir', 'puppet.conf'));
}

/** The java command line for a tree; `flags` go before the system properties. */
export function javaArgs(root: string, heap: string, flags: readonly string[] = []): string[] {
  return [
    `-Xms${heap}`,
    `-Xmx${heap}`,
    ...flags,
    '-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger',
    '-Djruby.lib=/usr/share/jruby/lib',
    `-Dlogback.configurationFile=${join(root, 'logback.xml')}`,
    '-jar',
    jar,
    '--config',
    join(root, 'conf.d'),
    '--bootstrap-config',
    join(root, 'services.d'),
  ];
}

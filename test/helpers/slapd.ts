/**
 * A private OpenLDAP slapd per test file: a temporary directory with a
 * generated slapd.conf, an mdb database for dc=example,dc=test seeded from
 * test/fixtures/ldap/seed.ldif (slapadd), listening on ldap:// (plain and
 * StartTLS) and ldaps:// on free 127.0.0.1 ports with the test TLS
 * certificate (test/fixtures/tls/localhost.crt). Never the system service.
 *
 * slapd missing → startSlapd() rejects, telling to run scripts/ci/install-slapd.sh
 * (the tests fail; they are never skipped).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const INSTALL_HINT = 'run scripts/ci/install-slapd.sh (installs the slapd and ldap-utils packages non-interactively)';

export const LDAP_SUFFIX = 'dc=example,dc=test';
export const LDAP_PEOPLE = `ou=people,${LDAP_SUFFIX}`;
export const LDAP_GROUPS = `ou=groups,${LDAP_SUFFIX}`;
/** The seeded users and their passwords (test/fixtures/ldap/seed.ldif). */
export const LDAP_USERS = {
  alice: 'alice-secret',
  bob: 'b0b:with:colons',
  'j, doe': 'jdoe-secret',
} as const;

export interface TestSlapd {
  readonly host: string;
  /** Plain LDAP (and StartTLS). */
  readonly port: number;
  /** LDAP over TLS. */
  readonly ldapsPort: number;
  /** Stop the server (the data and ports stay reserved for start()). */
  stop(): Promise<void>;
  /** Start it again on the same ports with the same data. */
  start(): Promise<void>;
  /** Stop and remove everything. */
  close(): Promise<void>;
}

function which(candidates: string[], name: string): string | null {
  for (const c of candidates) if (existsSync(c)) return c;
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function slapdConf(dir: string, schemaDir: string, moduleDir: string | null): string {
  const tls = join(fixtures, 'tls');
  return [
    `include ${join(schemaDir, 'core.schema')}`,
    `include ${join(schemaDir, 'cosine.schema')}`,
    `include ${join(schemaDir, 'inetorgperson.schema')}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    ...(moduleDir ? [`modulepath ${moduleDir}`, 'moduleload back_mdb'] : []),
    `TLSCACertificateFile ${join(tls, 'ca.crt')}`,
    `TLSCertificateFile ${join(tls, 'localhost.crt')}`,
    `TLSCertificateKeyFile ${join(tls, 'localhost.key')}`,
    'database mdb',
    'maxsize 16777216',
    `suffix "${LDAP_SUFFIX}"`,
    `rootdn "cn=admin,${LDAP_SUFFIX}"`,
    // Nobody uses the root account: a random password nobody knows.
    `rootpw ${randomBytes(18).toString('base64url')}`,
    `directory ${join(dir, 'db')}`,
    'access to attrs=userPassword by anonymous auth by self read by * none',
    'access to * by users read by anonymous auth by * none',
    '',
  ].join('\n');
}

/** Start a private slapd seeded with test/fixtures/ldap/seed.ldif. */
export async function startSlapd(): Promise<TestSlapd> {
  const slapd = which(['/usr/sbin/slapd', '/usr/local/sbin/slapd', '/usr/local/libexec/slapd', '/usr/libexec/slapd'], 'slapd');
  const slapadd = which(['/usr/sbin/slapadd', '/usr/local/sbin/slapadd'], 'slapadd');
  if (slapd === null || slapadd === null) throw new Error(`OpenLDAP slapd is not installed: ${INSTALL_HINT}`);
  const schemaDir = ['/etc/ldap/schema', '/etc/openldap/schema', '/usr/local/etc/openldap/schema'].find((d) => existsSync(join(d, 'core.schema')));
  if (schemaDir === undefined) throw new Error(`OpenLDAP schema files (core.schema) not found: ${INSTALL_HINT}`);
  const moduleDir = ['/usr/lib/ldap', '/usr/lib/openldap', '/usr/lib64/openldap', '/usr/local/libexec/openldap'].find((d) => existsSync(join(d, 'back_mdb.la')) || existsSync(join(d, 'back_mdb.so'))) ?? null;

  const dir = mkdtempSync(join(tmpdir(), 'palisade-slapd-'));
  mkdirSync(join(dir, 'db'));
  const conf = join(dir, 'slapd.conf');
  writeFileSync(conf, slapdConf(dir, schemaDir, moduleDir));
  const seeded = spawnSync(slapadd, ['-q', '-f', conf, '-l', join(fixtures, 'ldap', 'seed.ldif')], { encoding: 'utf8' });
  if (seeded.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`slapadd failed (${seeded.status}): ${seeded.stderr}`);
  }

  const host = '127.0.0.1';
  let port = 0;
  let ldapsPort = 0;
  let child: ChildProcess | null = null;
  let output = '';
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  async function launch(): Promise<void> {
    output = '';
    const proc = spawn(slapd!, ['-f', conf, '-h', `ldap://${host}:${port}/ ldaps://${host}:${ldapsPort}/`, '-d', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    let exited = false;
    proc.once('exit', () => (exited = true));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`slapd exited at start (${proc.exitCode}): ${output.trim()}`);
      if ((await canConnect(port)) && (await canConnect(ldapsPort))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    throw new Error(`slapd did not listen within 10 s: ${output.trim()}`);
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  // Free ports can be taken between the probe and slapd's bind: retry with others.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    ldapsPort = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        process.removeListener('exit', killOnExit);
        throw err;
      }
    }
  }

  return {
    host,
    get port() {
      return port;
    },
    get ldapsPort() {
      return ldapsPort;
    },
    stop,
    start: launch,
    async close() {
      await stop();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

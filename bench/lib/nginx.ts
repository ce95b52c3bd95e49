/** Private nginx instances (never the system service): generated conf, own prefix, daemon off. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, type Child } from './procs.ts';
import { pinned } from './pin.ts';

export const UPSTREAM_BODY = 'ok\n';

function common(prefix: string, name: string): string {
  const tmp = join(prefix, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  return `
daemon off;
master_process on;
worker_processes 1;
pid ${join(prefix, `${name}.pid`)};
error_log ${join(prefix, `${name}-error.log`)} warn;
events { worker_connections 8192; }
`;
}

function tempPaths(prefix: string, name: string): string {
  const tmp = join(prefix, `${name}-tmp`);
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${join(tmp, k)};`)
    .join('\n');
}

/**
 * The shared upstream: tiny fixed response, keep-alive, no access log. Upstream
 * connections from the proxies are never closed by it (keepalive_requests high),
 * so no contender pays reconnects the others do not.
 */
export function upstreamConf(prefix: string, port: number): string {
  return `${common(prefix, 'upstream')}
http {
${tempPaths(prefix, 'upstream')}
  access_log off;
  keepalive_timeout 120s;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type text/plain;
      return 200 "ok\\n";
    }
  }
}
`;
}

/** nginx as the reference reverse proxy, configured the way the docs recommend for keep-alive upstreams. */
export function proxyConf(prefix: string, port: number, upstreamPort: number): string {
  return `${common(prefix, 'proxy')}
http {
${tempPaths(prefix, 'proxy')}
  access_log ${join(prefix, 'nginx-proxy-access.log')};
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export function startNginx(name: string, prefix: string, conf: string, cpus: string | null): Child {
  const confFile = join(prefix, `${name}.conf`);
  writeFileSync(confFile, conf);
  const [cmd, args] = pinned(cpus, 'nginx', ['-p', prefix, '-e', join(prefix, `${name}-error.log`), '-c', confFile]);
  return start(name, cmd, args, { logFile: join(prefix, `${name}.log`) });
}

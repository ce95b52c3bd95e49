/**
 * OS command injection: a shell metacharacter (; | || & && newline, `…`,
 * $(…)) followed by a known command used like a command. Prose has
 * semicolons and pipes followed by words that are also commands ("Tom &
 * Jerry; cat lovers"), so ordinary words (cat, more, echo, python …) count
 * only with a first argument that looks like a shell argument (an option, a
 * path, a redirection, a variable, a URL or an IP address); unmistakable
 * commands (whoami, wget, /bin/sh …) count on their own. Quote and escape
 * tricks (w'h'o'am'i, c\at, ${IFS}, {cat,/etc/passwd}) are undone first.
 */

/** Unix commands that are not ordinary words: a metacharacter before them is enough (lower case: the shell is case-sensitive). */
const STRONG = [
  'whoami', 'uname', 'ifconfig', 'netstat', 'nslookup', 'wget', 'curl', 'ncat', 'netcat', 'nc', 'mkfifo', 'chmod', 'chown',
  'useradd', 'crontab', 'bash', 'zsh', 'ksh', 'csh', 'tcsh', 'sh', 'socat', 'xterm', 'ls', 'pwd', 'id', 'printenv', 'lsof', 'ps',
  'base64', 'sudo', 'getent', 'rm', 'ping6', 'traceroute', 'dig', 'telnet', 'tftp', 'nmap', 'gcc', 'killall', 'pkill',
];

/** Windows commands (case-insensitive, like cmd.exe). */
const WINDOWS = [
  'ipconfig', 'systeminfo', 'tasklist', 'certutil', 'bitsadmin', 'wmic', 'powershell', 'pwsh', 'cmd', 'cmd.exe', 'net.exe',
  'reg.exe', 'mshta', 'rundll32', 'regsvr32', 'cscript', 'wscript', 'vssadmin', 'schtasks', 'icacls', 'findstr', 'tracert',
];

/** Commands that are also ordinary words: they need a shell-looking first argument. */
const WEAK = [
  'cat', 'more', 'less', 'head', 'tail', 'find', 'sort', 'echo', 'type', 'dir', 'set', 'start', 'copy', 'del', 'print', 'kill',
  'test', 'host', 'ip', 'who', 'which', 'grep', 'egrep', 'awk', 'gawk', 'sed', 'perl', 'python', 'python2', 'python3', 'ruby',
  'php', 'node', 'java', 'lua', 'tar', 'zip', 'unzip', 'gzip', 'ftp', 'ssh', 'scp', 'touch', 'mv', 'cp', 'mkdir', 'rmdir', 'sleep',
  'ping', 'timeout', 'env', 'export', 'eval', 'exec', 'source', 'nohup', 'xargs', 'tee', 'dd', 'od', 'xxd', 'strings', 'file',
  'stat', 'diff', 'uniq', 'wc', 'cut', 'tr', 'rev', 'nl', 'tac', 'paste', 'reg', 'ver', 'vol', 'attrib', 'netsh', 'sc', 'w',
  'last', 'uptime', 'date', 'history', 'alias', 'su', 'passwd', 'mail', 'sendmail', 'rsync', 'openssl', 'hostname',
];

const words = (list: string[]) => list.map((w) => w.replace(/\./g, '\\.')).sort((a, b) => b.length - a.length).join('|');

/** Optional prefix before the command word: an opening brace/paren, a path (/usr/bin/), a wrapper. */
const PREFIX = String.raw`[ \t]*(?:[{(!][ \t]*)?(?:\/(?:usr\/)?(?:local\/)?s?bin\/|[a-zA-Z]:\\windows\\system32\\)?`;
/** Where a command word ends. */
const END = String.raw`(?=$|[\s<>|;&\x60)'"}]|\$\{?IFS)`;
/** A first argument that only a shell command has: option, path, redirection, variable, drive, URL, IP, switch, bare number. */
const SHELL_ARG = String.raw`(?=[<>]|[ \t]+(?:-{1,2}[a-zA-Z]|[<>]|['"]?(?:\/|\.\.?[\\/]|~\/)|\$[\w{(]|[a-zA-Z]:[\\/]|\\\\|https?:\/\/|\d{1,3}(?:\.\d{1,3}){3}|\/[a-zA-Z?]\b|\d+[ \t]*(?:$|[;|&\n)\x60])))`;

const META = String.raw`(?:[;|&\n\r]|\$\()`;
const AFTER_META = [
  new RegExp(String.raw`${META}${PREFIX}(?:${words(STRONG)})${END}`),
  new RegExp(String.raw`${META}${PREFIX}(?:${words(WINDOWS)})${END}`, 'i'),
  new RegExp(String.raw`${META}${PREFIX}(?:${words(WEAK)})${SHELL_ARG}`),
  new RegExp(String.raw`${META}\s*net(?:\.exe)?\s+(?:user|localgroup|group|view|share|use|accounts|session)\b`, 'i'),
  // a redirection into a file later on the command line: ; echo x > /var/www/shell.php
  new RegExp(String.raw`${META}${PREFIX}(?:${words(WEAK)})[ \t][^;|&\n]*?[ \t][12]?>>?[ \t]*['"]?[\/~.$]`),
];
/** A command at the start of a backtick span. */
const IN_BACKTICKS = new RegExp(String.raw`^${PREFIX}(?:(?:${words(STRONG)})${END}|(?:${words(WEAK)})${SHELL_ARG})`);

/** `cmd` in backticks, not markdown inline code: the opening backtick starts the value or follows a non-blank, non-markdown character. */
function backtickCommand(v: string): boolean {
  let open = v.indexOf('\x60');
  while (open >= 0) {
    const close = v.indexOf('\x60', open + 1);
    if (close < 0) return false;
    const before = open === 0 ? '' : v[open - 1]!;
    if ((before === '' || !/[\s*_(\[]/.test(before)) && IN_BACKTICKS.test(v.slice(open + 1, close))) return true;
    open = v.indexOf('\x60', close + 1);
  }
  return false;
}

/** Code that runs commands: system('…'), os.popen(, Runtime.getRuntime().exec(, a /dev/tcp reverse shell. */
const EXEC_CALL = /(?<![.\w])(?:system|passthru|shell_exec|popen|proc_open|pcntl_exec|exec)\s*\(\s*['"`$]|\bos\.(?:system|popen)\s*\(|\bsubprocess\.\w+\s*\(|getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(|\/dev\/(?:tcp|udp)\/[\w.-]+\/\d+/i;

/** Undo quoting tricks: w'h'o'am'i, c\at, wh$@oami, ${IFS}, {cat,/etc/passwd}. */
function normalize(v: string): string {
  let s = v;
  if (s.includes('\0')) s = s.replace(/\0/g, '');
  if (s.includes('IFS')) s = s.replace(/\$\{IFS[^}]*\}|\$IFS(?:\$\d)?/g, ' ');
  if (/['"\\$]/.test(s)) s = s.replace(/(?<=[a-z])(?:''|""|'|"|\\|\$@|\$\(\)|\$\{\})(?=[a-z])/gi, '');
  if (s.includes('{')) s = s.replace(/\{([a-z]+),/gi, '$1 ');
  return s;
}

const MAY_HAVE = /[;|&\n\r`$(]/;
const FENCED = /\x60\x60\x60[\s\S]*?(?:\x60\x60\x60|$)/g;

/** Text that reads as a shell command line: fenced markdown code removed; newlines separate commands only in short texts. */
function commandLine(v: string): string {
  let s = v.includes('\x60\x60\x60') ? v.replace(FENCED, ' ') : v;
  const breaks = s.split('\n').length - 1;
  if (breaks > 2) s = s.replace(/[\r\n]+/g, ' ');
  return normalize(s);
}

export function commandInValue(forms: readonly string[]): boolean {
  for (const f of forms) {
    if (!MAY_HAVE.test(f)) continue;
    const v = commandLine(f);
    for (const re of AFTER_META) if (re.test(v)) return true;
    if ((v.includes('\x60') && backtickCommand(v)) || EXEC_CALL.test(v)) return true;
  }
  return false;
}

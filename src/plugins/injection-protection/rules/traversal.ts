/**
 * Path traversal and local file inclusion. Flags what climbs out of a base
 * directory or names a well-known sensitive file, not every "../": a
 * markdown link to "../guide.md" is ordinary text.
 *
 * - three or more "../" in a row, anywhere;
 * - "../../" at the start of a value (the value is a path that leaves its base);
 * - "../" followed later by a sensitive target (/etc/passwd, win.ini, .ssh/ …);
 * - any "../" that only appears once an extra encoding layer is undone, or
 *   written in a filter-evasion form ("....//", "..;/", "..\/");
 * - a value that starts with an absolute sensitive path (/etc/passwd,
 *   C:\Windows\win.ini, file:///etc/shadow) or a PHP stream wrapper (php://filter).
 */

/** A ".." segment: two or more dots, an optional Tomcat ";param", then separators. */
const CLIMB = String.raw`\.{2,}(?:;[^\\/]*)?[\\/]+`;
const CLIMB_ANY = new RegExp(CLIMB);
const CLIMB_RUN3 = new RegExp(String.raw`(?:^|[^\w.])(?:${CLIMB}){3,}`);
const CLIMB_AT_START = new RegExp(String.raw`^[\s"'\x60=]*(?:${CLIMB}){2}`);
const CLIMB_EVASION = /\.{3,}[\\/]{2}|\.\.[\\/]{2,}|\.\.;[\\/]|\.\.\\\/|\.\.\/\\/;

const SENSITIVE = new RegExp(
  String.raw`(?:^|[\\/\s'"=])(?:` +
    [
      String.raw`etc[\\/]+(?:passwd|shadow|group|hosts|issue|motd|crontab|sudoers|master\.passwd|hostname|resolv\.conf|fstab|os-release|profile|environment|ssh|mysql|nginx|apache2?|httpd|php\d*|apt)`,
      String.raw`proc[\\/]+(?:self|version|cmdline|mounts|\d+)`,
      String.raw`var[\\/]+(?:log|mail|spool|www|lib[\\/]+mysql|run[\\/]+secrets)`,
      String.raw`root[\\/]`,
      String.raw`home[\\/]+[^\\/\s]+[\\/]+\.`,
      String.raw`\.(?:ssh|aws|kube|docker|gnupg|git|svn|hg)(?:[\\/]|$)`,
      String.raw`\.(?:env|htaccess|htpasswd|bash_history|bashrc|zshrc|profile|npmrc|netrc|pgpass|mysql_history)\b`,
      String.raw`id_(?:rsa|dsa|ecdsa|ed25519)\b`,
      String.raw`(?:authorized_keys|known_hosts)\b`,
      String.raw`(?:web|meta)-inf\b`,
      String.raw`(?:web\.config|wp-config\.php|configuration\.php|local\.xml|database\.yml|settings\.py|application\.(?:properties|ya?ml)|php\.ini|my\.cnf|httpd\.conf|nginx\.conf)\b`,
      String.raw`(?:boot|win|system)\.ini\b`,
      String.raw`(?:autoexec\.bat|config\.sys)\b`,
      String.raw`(?:windows|winnt)[\\/]+(?:system32|system|win\.ini|repair|debug|panther|temp)`,
      String.raw`inetpub[\\/]`,
      String.raw`(?:usr[\\/]+(?:local[\\/]+)?(?:s?bin|etc|lib)|s?bin)[\\/]+\w`,
      String.raw`dev[\\/]+(?:tcp|udp|shm|fd|mem|kmem)\b`,
    ].join('|') +
    ')',
  'i',
);

const ABSOLUTE_TARGET = new RegExp(
  String.raw`^[\s"'\x60=]*(?:file:[\\/]{2}(?:localhost)?[\\/]?)?(?:[a-z]:)?[\\/]+(?:` +
    [
      String.raw`etc[\\/]+(?:passwd|shadow|group|hosts|issue|crontab|sudoers|master\.passwd|hostname|resolv\.conf|fstab|os-release|ssh|mysql|nginx|apache2?|httpd)`,
      String.raw`proc[\\/]+(?:self|version|cmdline|\d+)`,
      String.raw`(?:windows|winnt)[\\/]+(?:system32|system\.ini|win\.ini|repair|debug|panther)`,
      String.raw`(?:boot|win)\.ini`,
      String.raw`inetpub[\\/]`,
      String.raw`root[\\/]+\.`,
      String.raw`var[\\/]+(?:log|run[\\/]+secrets)[\\/]`,
      String.raw`dev[\\/]+(?:tcp|udp)[\\/]`,
    ].join('|') +
    ')',
  'i',
);

const WRAPPER = /^[\s"'`=]*(?:php|phar|zip|expect|glob|jar|netdoc|compress\.zlib|compress\.bzip2):\/\//i;

function inForm(v: string, hidden: boolean): boolean {
  if (ABSOLUTE_TARGET.test(v) || WRAPPER.test(v)) return true;
  const climb = CLIMB_ANY.exec(v);
  if (climb === null) return false;
  if (hidden || CLIMB_AT_START.test(v) || CLIMB_RUN3.test(v) || CLIMB_EVASION.test(v)) return true;
  return SENSITIVE.test(v.slice(climb.index));
}

/** A traversal in a value, given its decoded forms (see decodedForms): a "../" that only decoding reveals counts at once. */
export function traversalInValue(forms: readonly string[]): boolean {
  const plain = !CLIMB_ANY.test(forms[0]!);
  for (let i = 0; i < forms.length; i++) if (inForm(forms[i]!, i > 0 && plain)) return true;
  return false;
}

/** A dot-dot segment anywhere in a request path (clients remove them; only crafted requests carry one). */
const PATH_CLIMB = /(?:^|[\\/])\.{2,}(?:;[^\\/]*)?(?:[\\/]|$)/;

export function traversalInPath(path: string): boolean {
  return PATH_CLIMB.test(path) || ABSOLUTE_TARGET.test(path);
}

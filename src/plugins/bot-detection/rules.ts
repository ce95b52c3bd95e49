/**
 * The built-in list of bad bots, checked after the user's `allow` and `deny`.
 *
 * KONG_RULES: Kong's kong/plugins/bot-detection/rules.lua (taken by Kong from
 * ua-parser/uap-core regexes.yaml): PCRE written for ngx.re.find(…, "jo"),
 * case-sensitive, unanchored; the same in JavaScript. Kong only asks "does it
 * match?", so four parts are written as what they match as a yes/no test —
 * the optional prefixes and suffixes that only fed captures are dropped
 * (Kong's text in the comment above each; `\b\w*favicon\w*\b` is `favicon`):
 * the same User-Agents match, but without the cubic backtracking of the
 * originals (a 1,000-character User-Agent took a second in one of them).
 * Kong's list is broad: it also matches search-engine crawlers (Googlebot,
 * bingbot …) and some HTTP libraries (Apache-HttpClient, Python-urllib);
 * `allow` them where they are welcome, as with Kong.
 *
 * SCANNERS (Palisade): vulnerability scanners, fuzzers and attack tools that
 * announce themselves in User-Agent by default (case-insensitive). Reviewed
 * 2025: sqlmap, Nikto, the Nmap Scripting Engine, masscan, ZGrab, Nuclei,
 * WPScan, DirBuster, gobuster, ffuf, feroxbuster, wfuzz, Acunetix, Nessus,
 * OpenVAS, w3af, Havij, Arachni, Netsparker/Invicti, ZmEu, Morfeus, Jorgee,
 * commix, skipfish, Paros, sqlninja, Pangolin, WebInspect, AppScan,
 * CensysInspect, Zollard. Add to it in one place: here.
 */

export const KONG_RULES: readonly string[] = [
  String.raw`(Pingdom.com_bot_version_)(\d+)\.(\d+)`, // Pingdom
  String.raw`(facebookexternalhit)/(\d+)\.(\d+)`, // Facebook
  String.raw`Google.*/\+/web/snippet`, // Google Plus
  String.raw`(Twitterbot)/(\d+)\.(\d+)`, // Twitter
  String.raw`/((?:Ant-)?Nutch|[A-z]+[Bb]ot|[A-z]+[Ss]pider|Axtaris|fetchurl|Isara|ShopSalad|Tailsweep)[ \-](\d+)(?:\.(\d+)(?:\.(\d+))?)?`, // Bots Pattern '/name-0.0'
  String.raw`(008|Altresium|Argus|BaiduMobaider|BoardReader|DNSGroup|DataparkSearch|EDI|Goodzer|Grub|INGRID|Infohelfer|LinkedInBot|LOOQ|Nutch|PathDefender|Peew|PostPost|Steeler|Twitterbot|VSE|WebCrunch|WebZIP|Y!J-BR[A-Z]|YahooSeeker|envolk|sproose|wminer)/(\d+)(?:\.(\d+)(?:\.(\d+))?)?`, // Bots Pattern 'name/0.0'
  String.raw`(MSIE) (\d+)\.(\d+)([a-z]\d?)?;.* MSIECrawler`, // MSIECrawler
  String.raw`(Google-HTTP-Java-Client|Apache-HttpClient|http%20client|Python-urllib|HttpMonitor|TLSProber|WinHTTP|JNLP)(?:[ /](\d+)(?:\.(\d+)(?:\.(\d+))?)?)?`, // Downloader ...
  String.raw`(1470\.net crawler|50\.nu|8bo Crawler Bot|Aboundex|Accoona-[A-z]+-Agent|AdsBot-Google|altavista|AppEngine-Google|archive.*?\.org_bot|archiver|Ask Jeeves|[Bb]ai[Dd]u[Ss]pider|bingbot|BingPreview|blitzbot|BlogBridge|BoardReader|boitho.com-dc|BotSeer|favicon|\bYeti|Catchpoint bot|[Cc]harlotte|Checklinks|clumboot|Comodo HTTP\(S\) Crawler|Comodo-Webinspector-Crawler|ConveraCrawler|CRAWL-E|CrawlConvera|Daumoa|Feed Seeker Bot|findlinks|Flamingo_SearchEngine|FollowSite Bot|furlbot|Genieo|gigabot|GomezAgent|gonzo1|Googlebot|Google SketchUp|grub-client|gsa-crawler|heritrix|HiddenMarket|holmes|HooWWWer|htdig|ia_archiver|ICC-Crawler|Icarus6j|ichiro|IconSurf|IlTrovatore|InfuzApp|Innovazion Crawler|InternetArchive|IP2[a-z]+Bot|jbot\b|KaloogaBot|Kraken|Kurzor|larbin|LEIA|LesnikBot|Linguee Bot|LinkAider|LinkedInBot|Lite Bot|Llaut|lycos|Mail\.RU_Bot|masidani_bot|Mediapartners-Google|Microsoft .*? Bot|mogimogi|mozDex|MJ12bot|msnbot|msrbot|netresearch|Netvibes|NewsGator|^NING|Nutch|Nymesis|ObjectsSearch|Orbiter|OOZBOT|PagePeeker|PagesInventory|PaxleFramework|Peeplo Screenshot Bot|PlantyNet_WebRobot|Pompos|Read%20Later|Reaper|RedCarpet|Retreiver|Riddler|Rival IQ|scooter|Scrapy|Scrubby|searchsight|seekbot|semanticdiscovery|Simpy|SimplePie|SEOstats|SimpleRSS|SiteCon|Slurp|snappy|Speedy Spider|Squrl Java|TheUsefulbot|ThumbShotsBot|Thumbshots\.ru|TwitterBot|URL2PNG|Vagabondo|VoilaBot|^vortex|Votay bot|^voyager|WASALive.Bot|Web-sniffer|WebThumb|WeSEE:[A-z]+|WhatWeb|WIRE|WordPress|Wotbox|www\.almaden\.ibm\.com|Xenu(?:.s)? Link Sleuth|Xerka [A-z]+Bot|yacy|Yahoo[a-z]*Seeker|Yahoo! Slurp|Yandex\w+|YodaoBot|YottaaMonitor|Yowedo|^Zao|ZeBot_www\.ze\.bz|ZooShot|ZyBorg)`, // Bots
  // Kong: (?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 \-_\!\[\]:]*(?:KEYWORD))/(\d+)(?:\.(\d+)(?:\.(\d+))?)?
  String.raw`(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider)/\d|(?<=[Cc]rawl[a-z]*)/\d`, // Bots General matcher 'name/0.0'
  // Kong: (?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 _\!\[\]:]*(?:KEYWORD)) (\d+)(?:\.(\d+)(?:\.(\d+))?)?
  String.raw`(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider) \d|(?<=[Cc]rawl[a-z]*) \d`, // Bots General matcher 'name 0.0'
  // Kong: ((?:[A-z0-9]+|[A-z\-]+ ?)?(?: the )?(?:KEYWORD|[A-Za-z0-9-]*(?:[^C][^Uu])[Bb]ot)[A-z0-9]*)(?:(?:[ /]| v)(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?
  String.raw`[Ss][Pp][Ii][Dd][Ee][Rr]|[Ss]crape|[^C][^Uu][Bb]ot|[Cc][Rr][Aa][Ww][Ll]`, // Bots containing spider|scrape|bot(but not CUBOT)|Crawl
];

/** Self-announcing scanners and attack tools (case-insensitive, Palisade). */
export const SCANNERS: readonly string[] = [
  String.raw`sqlmap`,
  String.raw`\bnikto\b`,
  String.raw`Nmap Scripting Engine`,
  String.raw`\bmasscan\b`,
  String.raw`\bzgrab\b`,
  String.raw`\bnuclei\b`,
  String.raw`\bwpscan\b`,
  String.raw`\bdirbuster\b`,
  String.raw`\bgobuster\b`,
  String.raw`\bffuf\b|Fuzz Faster U Fool`,
  String.raw`\bferoxbuster\b`,
  String.raw`\bwfuzz\b`,
  String.raw`acunetix`,
  String.raw`\bnessus\b`,
  String.raw`\bopenvas\b`,
  String.raw`\bw3af\b`,
  String.raw`\bhavij\b`,
  String.raw`\barachni\b`,
  String.raw`netsparker|invicti`,
  String.raw`\bzmeu\b`,
  String.raw`\bmorfeus\b`,
  String.raw`\bjorgee\b`,
  String.raw`\bcommix\b`,
  String.raw`\bskipfish\b`,
  String.raw`\bparos/`,
  String.raw`\bsqlninja\b`,
  String.raw`\bpangolin\b`,
  String.raw`webinspect`,
  String.raw`\bappscan\b`,
  String.raw`CensysInspect`,
  String.raw`\bzollard\b`,
];

/** Kong's rules, compiled once per process (their cost grows faster than the length: run on bounded slices). */
export const KONG_BUILT_IN: readonly RegExp[] = KONG_RULES.map((r) => new RegExp(r));
/** The scanners, one alternation of names: linear in the length (about 10 ns a character), run on the whole value. */
export const SCANNER_BUILT_IN = new RegExp(SCANNERS.join('|'), 'i');

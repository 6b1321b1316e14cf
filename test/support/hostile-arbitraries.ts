// fast-check arbitraries of hostile registry input: repository names with traversal and
// encoding tricks, references, digests, byte ranges, query strings and Accept headers.
// Everything generated here is printable ASCII (what node:http will put on a request
// line); raw control and non-ASCII bytes are sent over sockets by the tests themselves.
import fc from "fast-check";

const hexChars = "0123456789abcdef".split("");
const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(...hexChars), minLength: length, maxLength: length });

/** A repository-name component the spec's grammar accepts. */
export const validComponent = fc.stringMatching(
  /^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,2}$/,
);

/** Words of the route table: valid components that could confuse a careless router. */
const routeWords = fc.constantFrom(
  "v2",
  "blobs",
  "uploads",
  "manifests",
  "tags",
  "list",
  "referrers",
  "sha256",
);

/**
 * Path components none of which a valid repository name may contain: traversal (plain
 * and percent-encoded, single and double), separators, encoded control characters and
 * unicode, characters outside the grammar, and empty components (`a//b`).
 */
export const hostileComponent = fc.oneof(
  fc.constantFrom(
    "",
    ".",
    "..",
    "...",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%2e",
    "..%2f..",
    "%2f",
    "%2F",
    "a%2fb",
    "%2e%2e%2f%2e%2e",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "%u002e%u002e",
    "\\",
    "..\\..",
    "%5c",
    "a\\b",
    "%00",
    "a%00b",
    "%0a",
    "%0d%0a",
    "%09",
    "%20",
    "%7f",
    "%ff",
    "%c3%a9",
    "%e2%80%ae",
    "%ef%bb%bf",
    "%f0%9f%90%b3",
    "%",
    "%zz",
    "A",
    "Upper",
    "-a",
    "a-",
    "_a",
    "a_",
    "a..b",
    "a___b",
    "a._b",
    "_catalog",
    "~root",
    "*",
    "a;b",
    "a,b",
    "a=b",
    "a@b",
    "a:b",
    "#",
    "a#b",
    "{}",
    "$(id)",
    "`id`",
    "'",
    '"',
    "<x>",
  ),
  // Printable ASCII outside the grammar (no "/" or "?", which change the route).
  fc
    .string({
      unit: fc.constantFrom(..."!\"#$%&'()*+,;<=>@[\\]^`{|}~ABCXYZ".split("")),
      minLength: 1,
      maxLength: 6,
    })
    .map((s) => `a${s}`),
  // Percent-encoded UTF-8 of arbitrary unicode (and lone surrogates' WTF-8 bytes).
  fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 4 })
    .map((s) => encodeURIComponent(s))
    .filter((s) => s.includes("%")),
  fc.string({ unit: "binary", minLength: 1, maxLength: 4 }).map((s) => percentEncodeAll(s)),
);

function percentEncodeAll(s: string): string {
  return [...Buffer.from(s, "utf8")]
    .map((byte) => `%${byte.toString(16).padStart(2, "0")}`)
    .join("");
}

/**
 * A repository name, valid or not: valid components, hostile components among them (so
 * the name breaks the grammar), names over 255 characters, and exactly 255. Tests decide
 * validity with their own copy of the grammar.
 */
export const repositoryName: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.array(validComponent, { minLength: 1, maxLength: 4 }).map((c) => c.join("/")),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.array(fc.oneof(validComponent, routeWords), { maxLength: 3 }),
        hostileComponent,
        fc.array(fc.oneof(validComponent, routeWords, hostileComponent), { maxLength: 3 }),
        fc.constantFrom("", "/"),
      )
      .map(([before, bad, after, lead]) => `${lead}${[...before, bad, ...after].join("/")}`),
  },
  {
    // Longer than 255 characters, every component valid.
    weight: 1,
    arbitrary: fc
      .integer({ min: 256, max: 2000 })
      .chain((length) =>
        fc.constantFrom(
          "a".repeat(length),
          `${"ab/".repeat(Math.ceil(length / 3))}c`,
          `${"a-b.".repeat(Math.ceil(length / 4))}c`,
        ),
      ),
  },
  // Exactly 255 characters: the largest valid name.
  { weight: 1, arbitrary: fc.constant("a".repeat(255)) },
);

export const validTag = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,30}$/);

/** Digests Meridian accepts (unknown content), optionally with the colon percent-encoded. */
export const wellFormedDigest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

/** Strings that are not digests Meridian accepts. */
export const malformedDigest = fc.oneof(
  hex(63).map((h) => `sha256:A${h}`),
  hex(64).map((h) => `sha256:${h.toUpperCase()}F`),
  hex(63).map((h) => `sha256:${h}`),
  hex(65).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha256:${h}`),
  hex(64).map((h) => `sha512:${h}`),
  hex(32).map((h) => `md5:${h}`),
  hex(40).map((h) => `sha1:${h}`),
  hex(96).map((h) => `sha384:${h}`),
  hex(64).map((h) => `SHA256:${h}`),
  hex(64).map((h) => `sha-256:${h}`),
  hex(64).map((h) => `sha256+b64:${h}`),
  hex(64).map((h) => h),
  hex(64).map((h) => `sha256${h}`),
  hex(64).map((h) => `sha256::${h}`),
  hex(64).map((h) => `:${h}`),
  hex(62).map((h) => `sha256:${h}zz`),
  hex(62).map((h) => `sha256:${h}%00`),
  hex(64).map((h) => `sha256:${h}%20`),
  hex(64).map((h) => `sha256:%2e%2e%2f${h}`),
  hex(64).map((h) => `%20sha256:${h}`),
  fc.constantFrom(
    "sha256:",
    ":",
    "sha256",
    "sha256:../../../../etc/passwd",
    "sha256:..%2f..%2fmetadata.db",
    `sha256:${"0".repeat(300)}`,
    `sha512:${"f".repeat(4000)}`,
  ),
  fc
    .string({ unit: fc.constantFrom(..."abcdefxyz0123:+._-=".split("")), maxLength: 80 })
    .filter((s) => !/^sha(256|512):[a-f0-9]+$/.test(s)),
);

/** A header value node:http will send: printable ASCII with the odd tab and space. */
export const headerText = (maxLength = 200) =>
  fc.string({
    unit: fc.oneof(
      {
        weight: 20,
        arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      },
      { weight: 1, arbitrary: fc.constantFrom(" ", "\t") },
    ),
    maxLength,
  });

const bigNumber = fc.oneof(
  fc.nat({ max: 3000 }).map(String),
  fc.constantFrom(
    "0",
    "00",
    "0001",
    "999999999999999",
    "9999999999999999",
    "99999999999999999999",
    "18446744073709551616",
    "1e3",
    "0x10",
    "-1",
    "-0",
    "+5",
    "1.5",
    "",
    " 1",
    "NaN",
    "Infinity",
  ),
);

/** `Range` header values for blob reads. */
export const readRangeHeader = fc.oneof(
  fc.tuple(bigNumber, bigNumber).map(([a, b]) => `bytes=${a}-${b}`),
  fc.tuple(fc.nat({ max: 1200 }), fc.nat({ max: 1200 })).map(([a, b]) => `bytes=${a}-${b}`),
  fc.nat({ max: 1200 }).map((a) => `bytes=${a}-`),
  fc.nat({ max: 1200 }).map((a) => `bytes=-${a}`),
  fc
    .array(fc.tuple(fc.nat({ max: 1200 }), fc.nat({ max: 1200 })), { minLength: 2, maxLength: 5 })
    .map((ranges) => `bytes=${ranges.map(([a, b]) => `${a}-${b}`).join(",")}`),
  fc.tuple(fc.nat({ max: 100 }), fc.nat({ max: 100 })).map(([a, b]) => `bytes=-${a}-${b}`),
  fc.constantFrom(
    "bytes=",
    "bytes=-",
    "bytes=--1",
    "bytes=0--1",
    "bytes = 0-1",
    "BYTES=0-1",
    "bytes=0-1 ",
    " bytes=0-1",
    "items=0-1",
    "bytes=0-0,-1",
    "bytes=1-0",
    "bytes=5-2",
    "bytes=-0",
    "bytes=0-",
    "bytes 0-1",
    "0-1",
    "bytes=0x1-0x2",
  ),
  headerText(60),
);

/** Query strings for listings: `n`/`last` garbage, repeats, unrelated parameters, length. */
export const listingQuery: fc.Arbitrary<string> = fc
  .oneof(
    fc
      .array(
        fc.tuple(
          fc.constantFrom("n", "last", "N", "n[]", "last[]", "x", "", "n%00", "digest"),
          fc.oneof(bigNumber, headerText(40).map(encodeURIComponent), fc.constant("")),
        ),
        { maxLength: 6 },
      )
      .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&")),
    fc.constantFrom("n", "n=", "last", "&&&", "=", "n=1&n=2&n=abc", "n=%31", "n=1&last=%ff%fe"),
    fc.integer({ min: 1000, max: 8000 }).map((length) => `n=5&last=${"z".repeat(length)}`),
    fc.integer({ min: 100, max: 600 }).map((count) => Array(count).fill("n=1").join("&")),
  )
  // A request line has no raw spaces or tabs; everything else goes as generated.
  .map((query) => query.replace(/ /g, "%20").replace(/\t/g, "%09"));

const manifestTypes = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.artifact.manifest.v1+json",
];

/** Accept headers: lists of media types with parameters, wildcards, garbage. */
export const acceptHeader = fc.oneof(
  fc
    .array(
      fc.tuple(
        fc.constantFrom(
          ...manifestTypes,
          ...manifestTypes.map((t) => t.toUpperCase()),
          "*/*",
          "application/*",
          "application/json",
          "text/html",
          "",
          "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        fc.constantFrom("", ";q=0", ";q=0.5", "; charset=utf-8", ";;;", ";q=abc"),
      ),
      { maxLength: 6 },
    )
    .map((items) => items.map(([type, params]) => `${type}${params}`).join(", ")),
  headerText(300),
  fc.constantFrom(",,,,", " , ", "*/*;q=0", "application/vnd.oci.image.manifest.v1+json,,*/*"),
);

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import GithubSlugger from "github-slugger";
import { Lexer, type Token, type Tokens } from "marked";
import { describe, expect, it } from "vitest";
import { packageDir } from "../../src/package-dir.js";

/** The README and every page under docs/: the documents a reader follows links between. */
const documents = [
  "README.md",
  ...readdirSync(path.join(packageDir, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** Every token of a document, nested ones (a link in a table cell or a list item) included. */
function* walk(tokens: Token[]): Generator<Token> {
  for (const token of tokens) {
    yield token;
    const t = token as Token & { tokens?: Token[]; items?: Token[]; header?: Token[]; rows?: Token[][] };
    if (t.tokens) yield* walk(t.tokens);
    if (t.items) yield* walk(t.items);
    if (token.type === "table") {
      const table = token as Tokens.Table;
      for (const cell of table.header) yield* walk(cell.tokens);
      for (const row of table.rows) for (const cell of row) yield* walk(cell.tokens);
    }
  }
}

interface Document {
  links: string[];
  /** The anchors GitHub gives its headings. */
  anchors: Set<string>;
}

const parsed = new Map<string, Document>();
function read(file: string): Document {
  let doc = parsed.get(file);
  if (!doc) {
    const tokens = new Lexer().lex(readFileSync(path.join(packageDir, file), "utf8"));
    const slugger = new GithubSlugger();
    doc = { links: [], anchors: new Set() };
    for (const token of walk(tokens)) {
      if (token.type === "heading") doc.anchors.add(slugger.slug((token as Tokens.Heading).text));
      if (token.type === "link") doc.links.push((token as Tokens.Link).href);
    }
    parsed.set(file, doc);
  }
  return doc;
}

/** Why `href` in `from` leads nowhere, or undefined when it resolves. */
function broken(from: string, href: string): string | undefined {
  if (/^[a-z][a-z+.-]*:/i.test(href)) return undefined; // another site: not ours to check
  const [target, anchor] = href.split("#", 2) as [string, string | undefined];
  const file = target === "" ? from : path.posix.normalize(path.posix.join(path.posix.dirname(from), target));
  const full = path.join(packageDir, file);
  if (file.startsWith("..") || !existsSync(full)) return `${href}: no such file (${file})`;
  if (anchor === undefined) return undefined;
  if (!file.endsWith(".md") || statSync(full).isDirectory())
    return `${href}: an anchor into a file that is not a page`;
  return read(file).anchors.has(anchor) ? undefined : `${href}: ${file} has no heading #${anchor}`;
}

describe("the README and docs/", () => {
  it("link only to files that exist and to headings that are there", () => {
    const problems = documents.flatMap((file) =>
      read(file)
        .links.map((href) => broken(file, href))
        .filter((p): p is string => p !== undefined)
        .map((p) => `${file}: ${p}`),
    );
    expect(problems).toEqual([]);
    // The check itself sees links: the README's table of where to read next, at least.
    expect(read("README.md").links.filter((l) => l.startsWith("docs/")).length).toBeGreaterThanOrEqual(10);
  });

  it("reach every page of docs/ from the README", () => {
    const reached = new Set<string>(["README.md"]);
    const queue = ["README.md"];
    while (queue.length > 0) {
      const from = queue.shift()!;
      for (const href of read(from).links) {
        const [target] = href.split("#", 1) as [string];
        if (!target.endsWith(".md") || /^[a-z]+:/i.test(target)) continue;
        const file = path.posix.normalize(path.posix.join(path.posix.dirname(from), target));
        if (!reached.has(file) && documents.includes(file)) {
          reached.add(file);
          queue.push(file);
        }
      }
    }
    expect(documents.filter((d) => !reached.has(d))).toEqual([]);
  });

  it("keep the README a front page (about 250 lines at most)", () => {
    const lines = readFileSync(path.join(packageDir, "README.md"), "utf8").split("\n").length;
    expect(lines).toBeLessThanOrEqual(250);
  });
});

// The page's name rule (securechat/web/names.js) against the cases the Python rule runs too
// (tests/vectors/names.json). Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const module = process.env.NAMES_MODULE || new URL("../../securechat/web/names.js", import.meta.url).href;
const { normalizeName, typedName } = await import(module);
const cases = JSON.parse(readFileSync(new URL("../vectors/names.json", import.meta.url), "utf8")).cases;

for (const { why, raw, name } of cases) {
  test(`name rule: ${why}`, () => assert.equal(normalizeName(raw), name));
}

test("a typed name may carry its sigil, and only one", () => {
  assert.equal(typedName(" #Ops ", "#"), "ops");
  assert.equal(typedName("@Bob", "@"), "bob");
  assert.equal(typedName("##ops", "#"), null);
  assert.equal(typedName("#", "#"), null);
});

// Firefox for the e2e tests: Debian's firefox-esr driven by puppeteer-core over WebDriver BiDi, steered by the
// Python test (e2e/engines/drivers.py) with one JSON request per line on stdin and one answer per line on stdout.
// Kept to the few verbs the journey needs; every wait and assertion stays in Python.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

let browser = null;
const pages = new Map();
let nextPage = 1;
let initScript = "";

const page = (id) => {
  const found = pages.get(id);
  if (!found) throw new Error(`no page ${id}`);
  return found;
};

const verbs = {
  async launch({ executable, userDataDir, script, env }) {
    initScript = script || "";
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: executable,
      headless: true,
      userDataDir,
      env: { ...process.env, ...env },
      defaultViewport: { width: 1100, height: 800 },
      protocolTimeout: 120_000,
    });
    // The start tab stays open (blank), so closing every app tab leaves the browser running, as a user's would.
    return { version: await browser.version() };
  },
  async open({ url }) {
    const p = await browser.newPage();
    if (initScript) await p.evaluateOnNewDocument(initScript);
    p.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warn") process.stderr.write(`[firefox ${m.type()}] ${m.text()}\n`);
    });
    p.on("pageerror", (e) => process.stderr.write(`[firefox pageerror] ${e}\n`));
    const id = nextPage++;
    pages.set(id, p);
    if (url) await p.goto(url);
    return id;
  },
  async evaluate({ page: id, fn, arg }) {
    // fn is a function's source; awaited when it returns a promise.
    return await page(id).evaluate(`(${fn})(${JSON.stringify(arg ?? null)})`);
  },
  async upload({ page: id, selector, paths }) {
    const input = await page(id).waitForSelector(selector);
    await input.uploadFile(...paths);
    return null;
  },
  async click({ page: id, selector }) {
    await page(id).click(selector);
    return null;
  },
  async close_page({ page: id }) {
    await page(id).close();
    pages.delete(id);
    return null;
  },
  async quit() {
    if (browser) await browser.close();
    browser = null;
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { id, verb, ...args } = JSON.parse(line);
  let answer;
  try {
    if (!verbs[verb]) throw new Error(`unknown verb ${verb}`);
    answer = { id, value: (await verbs[verb](args)) ?? null };
  } catch (error) {
    answer = { id, error: String((error && error.stack) || error) };
  }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(answer) + "\n", resolve));
  if (verb === "quit") break;
}
if (browser) await browser.close();
process.exit(0); // stdin may still be open: the test is done with us

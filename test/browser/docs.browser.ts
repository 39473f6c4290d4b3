/// <reference lib="dom" />
// Browser test (npm run test:browser): Debian's Chromium, driven by playwright-core, against the real service
// (embedded FHIR server + buildApp, listening on a free port). Runs "Try it out" on POST /care-plans in Swagger UI
// and checks the 201 shown on the page, then opens the created plan as a browser does and checks the
// plain-language page. Screenshots go to test-output/.
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import t from 'tap';
import { PLAN_PAGE_CSP, renderPlanPage } from '../../src/http/views/plan-page.js';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import { fromRoot } from '../../src/paths.js';
import { startTestService, type TestService } from '../helpers/service.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const OUTPUT = fromRoot('test-output');

t.setTimeout(180_000);

/** Text and background colours of every element with text, with their WCAG contrast ratio. */
async function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const parse = (color: string) => {
      const [r, g, b, a = 1] = (color.match(/[\d.]+/g) ?? []).map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }: { r: number; g: number; b: number }) => {
      const channel = (value: number) => {
        const c = value / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (element: Element | null) => {
      for (let node = element; node; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color.a > 0) return color;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const problems: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll('*'))) {
      const ownText = Array.from(element.childNodes).some(
        (node) => node.nodeType === Node.TEXT_NODE && node.textContent?.trim(),
      );
      if (!ownText || (element as HTMLElement).offsetParent === null) continue;
      const style = getComputedStyle(element);
      const [l1, l2] = [luminance(parse(style.color)), luminance(background(element))].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const large =
        Number.parseFloat(style.fontSize) >= 24 ||
        (Number.parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        problems.push(
          `${element.tagName.toLowerCase()}.${element.className} "${element.textContent?.trim().slice(0, 40)}": ${ratio.toFixed(2)}`,
        );
      }
    }
    return problems;
  });
}

if (!existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} is missing: install Chromium: apt-get update && apt-get install -y chromium`);
} else {
  let service: TestService;
  let browser: Browser;
  let base = '';
  let created: SharedCarePlan | undefined;

  t.before(async () => {
    mkdirSync(OUTPUT, { recursive: true });
    service = await startTestService();
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  });
  t.teardown(async () => {
    await browser?.close();
    await service?.close();
  });

  t.test('Swagger UI: "Try it out" on POST /care-plans creates the example plan (201)', async (t) => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    page.on('requestfailed', (request) => failures.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on('request', (request) => {
      if (!request.url().startsWith(base) && !request.url().startsWith('data:'))
        failures.push(`external: ${request.url()}`);
    });

    await page.goto(`${base}/docs`);
    const operation = page
      .locator('.opblock.opblock-post')
      .filter({ has: page.locator('.opblock-summary-path[data-path="/care-plans"]') });
    await operation.locator('.opblock-summary').first().click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    const body = operation.locator('.body-param textarea');
    t.match(
      await body.inputValue(),
      /Staying at home and walking to the market again/,
      'the first example is in the body',
    );

    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/care-plans` && r.request().method() === 'POST'),
      operation.getByRole('button', { name: 'Execute' }).click(),
    ]);
    t.equal(response.status(), 201, 'the service answered 201');
    created = (await response.json()) as SharedCarePlan;

    const live = operation.locator('.live-responses-table');
    const status = live.locator('tbody tr.response .response-col_status').first();
    await status.waitFor();
    t.equal((await status.textContent())?.trim(), '201', 'Swagger UI shows 201');
    const shown =
      (await live.locator('tbody tr.response .response-col_description').first().textContent()) ?? '';
    t.match(shown, /"id":/, 'Swagger UI shows the created plan');
    t.match(shown, /Staying at home and walking to the market again/);
    t.match(shown.toLowerCase(), /location: \/care-plans\//, 'and its Location header');

    // One picture from the operation's title to the answer: the long code blocks are cut short for it.
    await page.addStyleTag({
      content:
        '.opblock-body pre.microlight, .opblock-body textarea { max-height: 150px !important; overflow: hidden !important; }',
    });
    const box = async (locator: typeof live) =>
      locator.evaluate((element) => {
        const rect = element.getBoundingClientRect();
        return { top: rect.top + window.scrollY, bottom: rect.bottom + window.scrollY };
      });
    const top = (await box(operation.locator('.opblock-summary').first())).top - 70;
    const bottom = (await box(live)).bottom + 20;
    await page.screenshot({
      path: `${OUTPUT}/docs-post-care-plans.png`,
      fullPage: true,
      clip: { x: 0, y: top, width: 1280, height: bottom - top },
    });
    t.same(failures, [], 'no page errors, failed or external requests');
    await page.close();
  });

  t.test('the created plan as a page people can read', async (t) => {
    t.ok(created?.id, 'a plan was created');
    const plan = created as SharedCarePlan;
    const failures: string[] = [];
    const context = await browser.newContext({ viewport: { width: 1000, height: 1200 } });
    const watch = (page: Page) => {
      page.on('pageerror', (error) => failures.push(error.message));
      page.on('response', (answer) => {
        if (answer.status() >= 400) failures.push(`${answer.status()} ${answer.url()}`);
      });
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') failures.push(message.text());
      });
      page.on('request', (request) => {
        if (request.url() !== `${base}/care-plans/${plan.id}` && !request.url().startsWith('data:')) {
          failures.push(`request: ${request.url()}`);
        }
      });
      return page;
    };

    // As a browser asks for it (Accept: text/html,...): the route serves the page once it negotiates HTML.
    let page = await context.newPage();
    const response = await page.goto(`${base}/care-plans/${plan.id}`);
    const type = response?.headers()['content-type'] ?? '';
    if (type.startsWith('text/html')) {
      watch(page);
      await page.reload();
      t.match(type, /^text\/html; charset=utf-8$/i);
      t.equal(response?.headers()['content-security-policy'], PLAN_PAGE_CSP, 'served with the page CSP');
      t.equal(response?.status(), 200);
    } else {
      t.comment(
        `GET /care-plans/{id} answered ${type} to a browser: rendering it with renderPlanPage instead`,
      );
      const json = (await response?.json()) as SharedCarePlan;
      await page.close();
      page = watch(await context.newPage());
      await page.setContent(renderPlanPage(json));
    }

    t.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    t.equal(await page.title(), 'Staying at home and walking to the market again (Maria Lopez)');
    t.same(
      await page.locator('h2').allInnerTexts(),
      [
        'What matters to me',
        'My goals',
        'My care team',
        'What happens next',
        'Decisions we made together',
        'What helps and what gets in the way',
      ],
      'the sections, in order',
    );
    t.equal(
      await page.locator('h1').evaluate((h1) => getComputedStyle(h1).color),
      'rgb(11, 79, 138)',
      'the style element applies (its CSP hash matches)',
    );
    t.same(await lowContrast(page), [], 'all text has WCAG AA contrast');
    await page.screenshot({ path: `${OUTPUT}/plan-page.png`, fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    t.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no sideways scrolling on a phone',
    );
    t.same(await lowContrast(page), [], 'all text has WCAG AA contrast on a phone');
    await page.screenshot({ path: `${OUTPUT}/plan-page-phone.png`, fullPage: true });

    await page.emulateMedia({ media: 'print' });
    t.equal(
      await page.locator('nav').evaluate((nav) => getComputedStyle(nav).display),
      'none',
      'no navigation on paper',
    );
    await page.pdf({ path: `${OUTPUT}/plan-page.pdf`, format: 'A4' });
    t.same(failures, [], 'no errors, CSP violations or requests for anything else');
    await context.close();
  });
}

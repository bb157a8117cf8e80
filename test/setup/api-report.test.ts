/**
 * The public API is deliberate: API Extractor (api-extractor.json) compares the surface of the
 * built declarations with the checked-in report, etc/torchts.api.md, and this test fails on any
 * difference. After a deliberate change: `npm run api:update`, then review and commit the report.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage } from '@microsoft/api-extractor';
import { buildDist, ROOT } from './dist';

const REPORT = path.join('etc', 'torchts.api.md');
/** Where API Extractor writes the report of the build (api-extractor.json's reportTempFolder). */
const BUILT = path.join('dist', 'api-extractor', 'torchts.api.md');

describe('the API report (etc/torchts.api.md)', function () {
  this.timeout(180_000);

  before(() => buildDist());

  it('matches the public surface of the build', () => {
    const messages: string[] = [];
    // localBuild false: compare only (never rewrite the report); the build's report goes to BUILT.
    const result = Extractor.invoke(ExtractorConfig.loadFileAndPrepare(path.join(ROOT, 'api-extractor.json')), {
      localBuild: false,
      messageCallback: (message: ExtractorMessage) => {
        if (message.logLevel !== ExtractorLogLevel.None) messages.push(message.formatMessageWithLocation(ROOT));
        message.handled = true;
      },
    });
    if (result.succeeded) return;
    const diff = fs.existsSync(path.join(ROOT, BUILT)) ? spawnSync('diff', ['-u', REPORT, BUILT], { cwd: ROOT, encoding: 'utf8' }).stdout : '';
    assert.fail(
      (result.apiReportChanged
        ? `The public API differs from ${REPORT}. If the change is deliberate, run \`npm run api:update\` and commit ${REPORT}; ` +
          `if not, undo the change to lib/index.ts, lib/public/ or a type they reach.\n`
        : `API Extractor failed (${result.errorCount} errors, ${result.warningCount} warnings); fix these, then \`npm run api:update\`.\n`) +
        (diff ? `\n${diff}\n` : '') +
        `\napi-extractor said:\n${messages.join('\n')}`,
    );
  });
});

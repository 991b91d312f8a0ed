/** A built dashboard in miniature: a page naming its two hashed assets, for the serving tests. */
import type { DashboardAssets } from '../../src/serving/dashboard.js';

export const fakeDashboardAssets: DashboardAssets = {
  html: '<link href="%APP_CSS%"><script src="%APP_JS%"></script>',
  manifest: { js: 'app-ABC123.js', css: 'app-DEF456.css' },
  files: new Map([
    ['app-ABC123.js', { body: 'console.log(1)', type: 'text/javascript; charset=utf-8' }],
    ['app-DEF456.css', { body: 'body{}', type: 'text/css; charset=utf-8' }],
  ]),
};

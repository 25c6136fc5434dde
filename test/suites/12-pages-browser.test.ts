// The certified interface's pages in headless Chromium (playwright-core, Debian's /usr/bin/chromium).
import '../pages-browser.test.js';

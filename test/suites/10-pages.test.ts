// The certified interface's pages for people (issue 13): fast tests through app.inject.
import '../pages.test.js';

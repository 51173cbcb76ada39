// The 404 and 500 pages: the shared header, footer and language; texts from data-i18n.
import { initPage, onLangChange, t } from './common.js';

initPage(null);
const key = document.body.dataset.titleKey;
const setTitle = () => { if (key) document.title = `${t(key)} — Magic Master`; };
setTitle();
onLangChange(setTitle);

import { createApp } from 'vue';
import App from './App.vue';
import { router } from './router';
import { i18n, currentLocale } from './i18n';
import { setUnauthorisedHandler } from './api';
import { session } from './session';
import { close as closeLive } from './live';
import './styles.css';

document.documentElement.lang = currentLocale();
setUnauthorisedHandler(() => {
  // The session ended (expired, signed out elsewhere): back to sign-in, then to where the user was.
  if (!session.user) return;
  session.user = null;
  closeLive();
  const here = router.currentRoute.value.fullPath;
  void router.push({ path: '/signin', query: { next: here } });
});

createApp(App).use(i18n).use(router).mount('#app');

import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { homeOf, loadSession, session, type User } from './session';

/** One route per work surface; `roles` says who may open it (the API enforces the same). */
declare module 'vue-router' {
  interface RouteMeta {
    roles?: User['role'][];
    /** Catalogue key of the page title. */
    title?: string;
    public?: boolean;
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/', redirect: () => homeOf(session.user) },
  { path: '/signin', component: () => import('./pages/SignIn.vue'), meta: { public: true, title: 'signin.title' } },
  { path: '/crew', component: () => import('./pages/Crew.vue'), meta: { roles: ['crew', 'admin'], title: 'common.nav.crew' } },
  { path: '/crew/cases/:id', component: () => import('./pages/CrewCase.vue'), props: true, meta: { roles: ['crew', 'admin'], title: 'common.nav.crew' } },
  { path: '/verify', component: () => import('./pages/Verify.vue'), meta: { roles: ['verifier', 'admin'], title: 'common.nav.verify' } },
  { path: '/verify/cases/:id', component: () => import('./pages/VerifyCase.vue'), props: true, meta: { roles: ['verifier', 'admin'], title: 'common.nav.verify' } },
  { path: '/command', component: () => import('./pages/Command.vue'), meta: { roles: ['commander', 'admin'], title: 'common.nav.command' } },
  { path: '/operator', component: () => import('./pages/Operator.vue'), meta: { roles: ['operator', 'commander', 'admin'], title: 'common.nav.operator' } },
  { path: '/operator/devices/:id', component: () => import('./pages/OperatorDevice.vue'), props: true, meta: { roles: ['operator', 'commander', 'admin'], title: 'common.nav.operator' } },
  { path: '/operator/alarms', component: () => import('./pages/OperatorAlarms.vue'), meta: { roles: ['operator', 'commander', 'admin'], title: 'common.nav.alarms' } },
  { path: '/inspect', component: () => import('./pages/Inspect.vue'), meta: { roles: ['inspector', 'admin'], title: 'common.nav.inspect' } },
  { path: '/report', component: () => import('./pages/Report.vue'), meta: { roles: ['operator', 'commander', 'verifier', 'admin'], title: 'common.nav.report' } },
  { path: '/ranking', component: () => import('./pages/Ranking.vue'), meta: { public: true, title: 'ranking.title' } },
  { path: '/:rest(.*)*', component: () => import('./pages/NotFound.vue'), meta: { public: true, title: 'common.notFound' } },
];

export const router = createRouter({ history: createWebHistory('/'), routes });

router.beforeEach(async (to) => {
  if (!session.checked) await loadSession().catch(() => null);
  if (to.meta.public) {
    // A signed-in user who opens the sign-in page goes to their own page.
    return to.path === '/signin' && session.user ? homeOf(session.user) : true;
  }
  if (!session.user) return { path: '/signin', query: { next: to.fullPath } };
  if (to.meta.roles && !to.meta.roles.includes(session.user.role)) return homeOf(session.user);
  return true;
});

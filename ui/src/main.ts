/**
 * The page's shell: configuration, sign-in, and a hash router (#/, #/patient, #/validate,
 * #/audit). Patient data stays in memory: the only patient datum ever in the URL is the EHR deep
 * link's identifier (/ui/?patient.identifier=SYSTEM|VALUE).
 */
import { completeSignIn, currentUser, onSessionChange, signIn, signOut } from './auth.js';
import { loadConfig, type UiConfig } from './config.js';
import { clear, h, show } from './dom.js';
import { banner, errorBox } from './messages.js';
import { auditView } from './views/audit.js';
import { openPatientByIdentifier, patientView } from './views/patient.js';
import { searchView } from './views/search.js';
import { validateView } from './views/validate.js';

let config: UiConfig;

function needsSignIn(): boolean {
  return Boolean(config.auth) && !currentUser();
}

function signInView(reason?: string): void {
  const button = h('button', { type: 'button', class: 'primary', id: 'sign-in', onclick: () => void signIn(config.auth!).catch((e) => banner(errorBox(e, 'Sign-in'))) }, 'Sign in');
  show('Sign in', h('section', { class: 'card narrow' }, h('h1', {}, 'Sign in'), h('p', {}, reason ?? 'This gateway requires you to sign in with your organisation\'s account.'), button));
  button.focus();
}

function renderUser(): void {
  const box = document.getElementById('user')!;
  clear(box);
  if (!config?.auth) {
    box.append(h('span', { class: 'muted' }, 'Local access (no sign-in configured)'));
    return;
  }
  const user = currentUser();
  if (user) box.append(h('span', { id: 'user-name' }, user), ' ', h('button', { type: 'button', class: 'link', onclick: () => { signOut(); route(); } }, 'Sign out'));
  else box.append(h('button', { type: 'button', class: 'link', onclick: () => void signIn(config.auth!) }, 'Sign in'));
}

function markNav(name: string): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route(): Promise<void> {
  renderUser();
  if (needsSignIn()) {
    markNav('');
    signInView();
    return;
  }
  const name = location.hash.replace(/^#\/?/, '').split('/')[0] ?? '';
  markNav(name === 'patient' ? 'search' : name || 'search');
  try {
    if (name === 'validate') validateView();
    else if (name === 'audit') await auditView();
    else if (name === 'patient') await patientView(config);
    else searchView(config);
  } catch (err) {
    show('Error', errorBox(err));
  }
}

async function start(): Promise<void> {
  try {
    config = await loadConfig();
  } catch (err) {
    show('Error', errorBox(err));
    return;
  }
  onSessionChange(() => {
    renderUser();
    // Token expired or refused: say so, and offer to sign in again (never a blank page).
    if (needsSignIn()) banner('Your session has ended. ', h('button', { type: 'button', class: 'primary', onclick: () => void signIn(config.auth!) }, 'Sign in again'));
    else banner();
  });
  if (config.auth) {
    try {
      await completeSignIn(config.auth);
    } catch (err) {
      banner(errorBox(err, 'Sign-in'));
    }
  }
  window.addEventListener('hashchange', () => void route());
  const deepLink = new URLSearchParams(location.search).get('patient.identifier');
  if (deepLink && !needsSignIn() && !location.hash) {
    renderUser();
    await openPatientByIdentifier(config, deepLink);
    return;
  }
  await route();
}

void start();

// The resilience panel: the embedded test server's fault switches (drop sockets, expire
// tokens, refuse connections), so a person can break the connection on purpose and watch
// the client recover. Shown only when the demo runs on the embedded test server.
import { h, icon } from './ui.js';

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export class ResiliencePanel {
  constructor({ config, serverUrl, client }) {
    this.config = config;
    this.serverUrl = serverUrl;
    this.client = client;
    this.timeline = h('ol.timeline', { dataset: { testid: 'timeline' } });
    this.states = [];
    const faults = [
      ['drop_sockets', 'plug', 'Drop all sockets', 'Abrupt TCP close of every WebSocket (clients see code 1006). Live queries resume from their last change.',
        [{ action: 'drop_sockets' }]],
      ['expire_tokens', 'key', 'Expire all tokens', 'Every issued token is refused as TOKEN_EXPIRED. The client signs in again without dropping subscriptions.',
        [{ action: 'expire_tokens' }]],
      ['outage', 'slash', 'Server outage for 8 s', 'Sockets drop and the server answers 503 for 8 s: watch the backoff countdown, then the catch-up.',
        [{ action: 'refuse_connections', ms: 8000 }, { action: 'drop_sockets' }]],
    ];
    this.el = h('aside.panel', { hidden: true, dataset: { testid: 'resilience' }, 'aria-label': 'Resilience lab' },
      h('div.panel-head',
        h('div', h('h2', icon('activity', 18), h('span', 'Resilience lab')),
          h('p', 'Break the connection on purpose and watch the app recover. These switches exist only on the embedded test server.')),
        h('button.icon-btn', { type: 'button', title: 'Close', 'aria-label': 'Close', onclick: () => this.toggle(false) }, icon('x', 18))),
      h('div.fault-list', faults.map(([action, ic, label, desc, extra]) => h('button.fault', {
        type: 'button', dataset: { testid: `fault-${action}` }, onclick: (e) => this.fault(action, label, extra, e.currentTarget),
      }, h('span.fault-icon', icon(ic, 18)), h('span.fault-text', h('strong', label), h('span', desc))))),
      h('div.side-title', 'Connection timeline'),
      this.timeline,
    );
  }

  toggle(open = this.el.hidden) {
    this.el.hidden = !open;
    document.querySelector('[data-testid="toggle-resilience"]')?.classList.toggle('active', open);
  }

  log(text, kind = 'info') {
    const item = h(`li.tl-${kind}`, h('time', clock.format(new Date())), h('span', text));
    this.timeline.prepend(item);
    while (this.timeline.children.length > 40) this.timeline.lastElementChild.remove();
  }

  onState(state) {
    this.states.push({ ...state, at: Date.now() });
    const labels = {
      connected: ['Connected · subscriptions live', 'ok'],
      connecting: ['Connecting…', 'info'],
      reconnecting: [`Connection lost · retry ${state.attempt ?? 1} in ${((state.delayMs ?? 0) / 1000).toFixed(1)} s`, 'warn'],
      disconnected: ['Disconnected', 'off'],
      needs_auth: ['The server needs new credentials', 'bad'],
    };
    const [text, kind] = labels[state.state] ?? [state.state, 'info'];
    const item = h(`li.tl-${kind}`, { dataset: { state: state.state } }, h('time', clock.format(new Date())), h('span', text));
    this.timeline.prepend(item);
  }

  async fault(action, label, bodies, button) {
    button.disabled = true;
    button.classList.add('busy');
    try {
      // The fault route wants a system user's token: sign in as root afresh each time
      // (expire_tokens revokes every token issued before it, including ours).
      const login = await fetch(`${this.serverUrl}/v1/api/auth/login`, {
        // credentials: 'omit': root's session cookie must never land in the page's cookie jar.
        method: 'POST', credentials: 'omit', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: this.config.faults.user, password: this.config.faults.password }),
      });
      if (!login.ok) throw new Error(`root sign-in failed (${login.status})`);
      const { access_token: token } = await login.json();
      for (const body of bodies) {
        const res = await fetch(`${this.serverUrl}/v1/api/test/faults`, {
          method: 'POST', credentials: 'omit', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        if (!res.ok) throw new Error(`the server answered ${res.status}`);
      }
      this.log(`Fault injected: ${label}`, 'fault');
      if (action === 'expire_tokens') {
        // Show that HTTP calls recover too: the next query refreshes or signs in again.
        const t0 = performance.now();
        await this.client.queryOne(`SELECT COUNT(*) AS n FROM ${this.config.namespace ?? 'demo'}.inbox`);
        this.log(`Next query succeeded after re-authenticating (${Math.round(performance.now() - t0)} ms)`, 'ok');
      }
    } catch (err) {
      this.log(`Fault failed: ${err.message}`, 'bad');
    } finally {
      setTimeout(() => { button.disabled = false; button.classList.remove('busy'); }, 600);
    }
  }
}

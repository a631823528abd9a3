// passgate's page script: WebAuthn ceremonies for the login, enrollment and account pages.
// Small and framework-free; served from /static so the CSP can forbid inline script.
"use strict";

(function () {
  const app = document.getElementById("app");
  if (!app) return;
  const base = app.dataset.base;
  const csrf = app.dataset.csrf;
  const errorBox = document.getElementById("error");
  const statusBox = document.getElementById("status");

  // --- encoding: webauthn-rs speaks base64url; the browser API speaks ArrayBuffers ---
  function b64urlToBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(pk) {
    const o = Object.assign({}, pk);
    o.challenge = b64urlToBuf(pk.challenge);
    o.user = Object.assign({}, pk.user, { id: b64urlToBuf(pk.user.id) });
    o.excludeCredentials = (pk.excludeCredentials || []).map((c) =>
      Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function requestOptions(pk) {
    const o = Object.assign({}, pk);
    o.challenge = b64urlToBuf(pk.challenge);
    o.allowCredentials = (pk.allowCredentials || []).map((c) =>
      Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function extensions(cred) {
    try { return cred.getClientExtensionResults(); } catch (_) { return {}; }
  }
  function registrationJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      extensions: extensions(cred),
      response: {
        attestationObject: bufToB64url(r.attestationObject),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
    };
  }
  function assertionJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      extensions: extensions(cred),
      response: {
        authenticatorData: bufToB64url(r.authenticatorData),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        signature: bufToB64url(r.signature),
        userHandle: r.userHandle ? bufToB64url(r.userHandle) : null,
      },
    };
  }

  // --- messages: every failure says what happened (P6) ---
  function showError(message) {
    statusBox.textContent = "";
    errorBox.textContent = message;
  }
  function showStatus(message) {
    errorBox.textContent = "";
    statusBox.textContent = message;
  }
  function clearMessages() {
    errorBox.textContent = "";
    statusBox.textContent = "";
  }
  function describeWebAuthnError(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out — try again.";
      case "InvalidStateError":
        return "This passkey is already registered on this device. Use it to sign in, or choose another device or security key.";
      case "SecurityError":
        return "Your browser refused to use a passkey for this address. Check that you're on the right site.";
      case "NotSupportedError":
        return "This browser or device can't create this kind of passkey. Try another browser, or a security key.";
      case "AbortError":
        return null;
      default:
        return "Something went wrong with your passkey: " + (err && err.message ? err.message : "unknown error") + ". Try again.";
    }
  }
  class ServerError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }
  function wantsSecurityKey(pk) {
    const sel = pk.authenticatorSelection || {};
    if (sel.authenticatorAttachment === "cross-platform") return true;
    const creds = pk.allowCredentials || [];
    return creds.length > 0 && creds.every((c) =>
      (c.transports || []).length > 0 &&
      c.transports.every((t) => t === "usb" || t === "nfc" || t === "ble"));
  }

  // --- server calls: JSON, CSRF header, bounded in time ---
  async function api(path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 30000);
    let res;
    try {
      res = await fetch(base + path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
        signal: controller.signal,
      });
    } catch (e) {
      throw new ServerError("network", "We couldn't reach the server. Check your connection and try again.");
    } finally {
      clearTimeout(timer);
    }
    let data = {};
    try { data = await res.json(); } catch (_) { data = {}; }
    if (!res.ok) {
      let message = data.error_description || ("The server answered " + res.status + ".");
      if (res.status === 429) {
        const wait = res.headers.get("Retry-After");
        message = "Too many attempts. Wait " + (wait || "a few") + " seconds and try again.";
      }
      throw new ServerError(data.error || String(res.status), message);
    }
    return data;
  }
  function report(err) {
    if (err instanceof ServerError) return showError(err.message);
    const message = describeWebAuthnError(err);
    if (message) showError(message);
  }
  async function busy(button, work) {
    if (button) button.disabled = true;
    try { return await work(); } finally { if (button) button.disabled = false; }
  }

  // --- registration (enroll, recovery and account pages) ---
  async function register(startPath, startBody, label) {
    const start = await api(startPath, startBody);
    showStatus(wantsSecurityKey(start.publicKey)
      ? "Insert your security key and tap it when it blinks."
      : "Follow your browser's prompt to create the passkey.");
    const cred = await navigator.credentials.create({ publicKey: creationOptions(start.publicKey) });
    showStatus("Saving your passkey…");
    return api("/api/passkeys/finish", {
      ceremony_id: start.ceremony_id,
      credential: registrationJSON(cred),
      label: label || null,
    });
  }

  // After a passkey is saved: show a recovery code once (C1), ask for the second passkey the
  // organisation requires (C6), then go on.
  function afterEnrollment(done) {
    const codePanel = document.getElementById("code-panel");
    const secondPanel = document.getElementById("second-panel");
    const next = () => {
      if (done.second_passkey && secondPanel) {
        codePanel && codePanel.classList.add("hidden");
        secondPanel.classList.remove("hidden");
        const button = document.getElementById("second-passkey");
        button.addEventListener("click", () => {
          clearMessages();
          busy(button, async () => {
            const second = await register("/api/passkeys/start", {}, null);
            window.location.assign(second.redirect);
          }).catch(report);
        });
        return;
      }
      window.location.assign(done.redirect);
    };
    if (done.recovery_code && codePanel) {
      for (const form of document.querySelectorAll("form")) form.classList.add("hidden");
      clearMessages();
      document.getElementById("code-value").textContent = done.recovery_code;
      codePanel.classList.remove("hidden");
      document.getElementById("code-saved").addEventListener("click", next);
      return;
    }
    next();
  }

  function passkeysSupported() {
    if (window.PublicKeyCredential && navigator.credentials) return true;
    showError("This browser doesn't support passkeys. Use a current version of Chrome, Edge, Safari or Firefox.");
    return false;
  }

  // --- login page ---
  function loginPage() {
    const returnTo = app.dataset.returnTo;
    const started = app.dataset.started;
    const requirePasskey = app.dataset.requirePasskey === "true";
    const identifyForm = document.getElementById("identify-form");
    const passwordForm = document.getElementById("password-form");
    const emailInput = document.getElementById("email");
    const retry = document.getElementById("passkey-retry");
    let conditional = null;
    let lastStart = null;

    async function finishAssertion(start, cred) {
      showStatus("Signing you in…");
      const done = await api("/api/login/passkey", {
        ceremony_id: start.ceremony_id,
        credential: assertionJSON(cred),
        started: started,
        return_to: returnTo,
      });
      window.location.assign(done.redirect);
    }

    // Conditional UI (P4): passkeys offered in the email field's autofill from page load.
    async function startConditional() {
      if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      const start = await api("/api/login/discoverable");
      conditional = new AbortController();
      let cred;
      try {
        cred = await navigator.credentials.get({
          mediation: "conditional",
          publicKey: requestOptions(start.publicKey),
          signal: conditional.signal,
        });
      } catch (err) {
        if (err && err.name === "AbortError") return;
        throw err;
      }
      await finishAssertion(start, cred);
    }
    function stopConditional() {
      if (conditional) { conditional.abort(); conditional = null; }
    }

    async function modalPasskey(start) {
      lastStart = start;
      stopConditional();
      showStatus(wantsSecurityKey(start.publicKey)
        ? "Insert your security key and tap it when it blinks."
        : "Follow your browser's prompt to use your passkey.");
      try {
        const cred = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
        retry.classList.add("hidden");
        await finishAssertion(start, cred);
      } catch (err) {
        retry.classList.remove("hidden");
        throw err;
      }
    }

    function showPassword(email) {
      stopConditional();
      identifyForm.classList.add("hidden");
      retry.classList.add("hidden");
      passwordForm.classList.remove("hidden");
      document.getElementById("password-email").textContent = email;
      // Password managers file the password under the form's username field.
      document.getElementById("password-username").value = email;
      document.getElementById("password").focus();
    }

    identifyForm.addEventListener("submit", (e) => {
      e.preventDefault();
      clearMessages();
      const email = emailInput.value.trim();
      if (!email) return showError("Enter your email address.");
      const button = document.getElementById("continue");
      busy(button, async () => {
        stopConditional();
        const answer = await api("/api/login/identify", { email: email });
        if (answer.mode === "password" && !requirePasskey) return showPassword(email);
        if (answer.mode === "password") {
          return showError("This application needs a passkey, and your account has none yet. Sign in without it first and add one on your account page.");
        }
        await modalPasskey(answer);
      }).catch(report);
    });

    document.getElementById("passkey-button").addEventListener("click", (e) => {
      clearMessages();
      if (!passkeysSupported()) return;
      busy(e.currentTarget, async () => {
        stopConditional();
        const start = await api("/api/login/discoverable");
        await modalPasskey(start);
      }).catch(report);
    });

    const retryButton = document.getElementById("retry-passkey");
    retryButton.addEventListener("click", () => {
      clearMessages();
      const email = emailInput.value.trim();
      busy(retryButton, async () => {
        const again = email
          ? await api("/api/login/identify", { email: email })
          : await api("/api/login/discoverable");
        await modalPasskey(again);
      }).catch(report);
    });

    const usePassword = document.getElementById("use-password");
    if (usePassword) {
      usePassword.addEventListener("click", () => {
        clearMessages();
        const email = emailInput.value.trim();
        if (!email) return showError("Enter your email address first.");
        showPassword(email);
      });
    }

    document.getElementById("change-email").addEventListener("click", () => {
      passwordForm.classList.add("hidden");
      identifyForm.classList.remove("hidden");
      clearMessages();
      emailInput.focus();
    });

    passwordForm.addEventListener("submit", (e) => {
      e.preventDefault();
      clearMessages();
      const button = document.getElementById("password-submit");
      busy(button, async () => {
        showStatus("Checking…");
        const done = await api("/api/login/password", {
          email: emailInput.value.trim(),
          password: document.getElementById("password").value,
          started: started,
          return_to: returnTo,
        });
        window.location.assign(done.redirect);
      }).catch(report);
    });

    startConditional().catch(report);
  }

  // --- enrollment page (invitation, recovery link, new device, first-run setup) ---
  function enrollPage() {
    const mode = app.dataset.mode;
    const token = app.dataset.token;
    const form = document.getElementById("enroll-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      clearMessages();
      if (!passkeysSupported()) return;
      const label = document.getElementById("label").value.trim();
      busy(document.getElementById("create-passkey"), async () => {
        let done;
        if (mode === "setup") {
          const email = document.getElementById("email").value.trim();
          if (!email) return showError("Enter your email address.");
          const name = document.getElementById("name").value.trim();
          done = await register("/api/setup/start", { token: token, email: email, name: name || null }, label);
        } else {
          done = await register("/api/links/start", { token: token, kind: mode }, label);
        }
        afterEnrollment(done);
      }).catch(report);
    });
  }

  // --- recovery page: recovery code, or an emailed link (C1, C3) ---
  function recoverPage() {
    const codeForm = document.getElementById("code-form");
    codeForm.addEventListener("submit", (e) => {
      e.preventDefault();
      clearMessages();
      if (!passkeysSupported()) return;
      const email = document.getElementById("code-email").value.trim();
      const code = document.getElementById("code").value.trim();
      if (!email || !code) return showError("Enter your email and your recovery code.");
      busy(document.getElementById("code-submit"), async () => {
        const done = await register("/api/recover/code", { email: email, code: code }, null);
        afterEnrollment(done);
      }).catch(report);
    });
    const emailForm = document.getElementById("email-form");
    emailForm.addEventListener("submit", (e) => {
      e.preventDefault();
      clearMessages();
      const email = document.getElementById("recover-email").value.trim();
      if (!email) return showError("Enter your email address.");
      busy(document.getElementById("email-submit"), async () => {
        const answer = await api("/api/recover/email", { email: email });
        showStatus(answer.message);
      }).catch(report);
    });
  }

  // --- account page: add another passkey (P10, C2) ---
  function accountPage() {
    const add = document.getElementById("add-passkey");
    add.addEventListener("click", () => {
      clearMessages();
      if (!passkeysSupported()) return;
      busy(add, async () => {
        const done = await register("/api/passkeys/start", {}, null);
        window.location.assign(done.redirect);
      }).catch(report);
    });
  }

  const pages = { login: loginPage, enroll: enrollPage, recover: recoverPage, account: accountPage };
  const page = pages[app.dataset.page];
  if (page) page();
})();

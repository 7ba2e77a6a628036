// The sandbox's chat page: a small Telegram client for simulated users.
//
// It acts only through the sandbox's control API, like scripted test users do:
//   POST /sandbox/{token}/messages   send text, a photo or a file as the user
//   POST /sandbox/{token}/callback   press an inline button
//   GET  /sandbox/{token}/chats/{id}/messages, .../wait   read the chat, long-poll its events
//   GET  /sandbox/{token}/files/{file_id}   show photos, download documents
// plus /chat/api/config (who can be played, the bot's commands, the demo clock) and
// /chat/api/clock. Each tab plays one user (kept in the URL's #user=...), so several tabs are
// several people talking to the same bot.
"use strict";

(() => {
  const ROLE_LABELS = {
    pupil: "leerling · pupil",
    teacher: "leerkracht · teacher",
    parent: "ouder · parent",
    admin: "beheer · admin",
    telegram: "Telegram-gebruiker · user",
  };
  const ROLE_GROUPS = [
    ["pupil", "Leerlingen · Pupils"],
    ["teacher", "Leerkrachten · Teachers"],
    ["parent", "Ouders · Parents"],
    ["admin", "Beheer · Admin"],
    ["telegram", "Andere Telegram-gebruikers · Other Telegram users"],
  ];
  const WAIT_SECONDS = 25;
  const CONFIG_REFRESH_MS = 20000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    picker: $("picker"),
    chat: $("chat"),
    title: $("title"),
    people: $("people"),
    newUser: $("new-user"),
    newUserName: $("new-user-name"),
    back: $("back"),
    botName: $("bot-name"),
    status: $("status"),
    me: $("me"),
    messages: $("messages"),
    typing: $("typing"),
    replyKeyboard: $("reply-keyboard"),
    keyboardToggle: $("keyboard-toggle"),
    composer: $("composer"),
    text: $("text"),
    photoInput: $("photo-input"),
    fileInput: $("file-input"),
    commandsButton: $("commands-button"),
    commandsMenu: $("commands-menu"),
    clock: $("clock"),
    clockToggle: $("clock-toggle"),
    chatClockSlot: $("chat-clock-slot"),
    pickerClockSlot: $("picker-clock-slot"),
    clockNow: $("clock-now"),
    clockMoved: $("clock-moved"),
    clockForm: $("clock-form"),
    clockInput: $("clock-input"),
    clockNotes: $("clock-notes"),
    toast: $("toast"),
    alert: $("alert"),
    alertText: $("alert-text"),
    alertOk: $("alert-ok"),
    lightbox: $("lightbox"),
    lightboxImg: $("lightbox-img"),
  };

  const state = {
    config: null,
    token: null,
    me: null, // the person played in this tab
    seq: 0,
    generation: 0, // bumped on every switch, so an old long poll stops touching the page
    bubbles: new Map(), // message_id -> element
    keyboard: null, // the reply keyboard the bot set, or null
    keyboardHidden: false,
    pendingPresses: new Map(), // message_id -> button element waiting for an answer
    clock: null, // {epoch_ms, timezone, ...} as received
    clockReceived: 0,
    typingTimer: null,
    stuck: true, // the reader is at the end of the chat
  };

  // ------------------------------------------------------------------ http

  async function api(path, options = {}) {
    const response = await fetch(path, options);
    let body;
    try {
      body = await response.json();
    } catch {
      throw new Error(`${response.status} ${response.statusText}`);
    }
    if (!body.ok) throw new Error(body.description || `error ${response.status}`);
    return body.result;
  }

  const control = (path) => `/sandbox/${encodeURIComponent(state.token)}${path}`;
  const fileUrl = (fileId) => control(`/files/${encodeURIComponent(fileId)}`);

  function postJson(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function loadConfig() {
    const token = new URLSearchParams(location.search).get("token");
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    state.config = await api(`/chat/api/config${query}`);
    state.token = state.config.token;
    ui.title.textContent = state.config.title;
    ui.botName.textContent = state.config.bot.first_name;
    if (state.config.clock) showClock(state.config.clock);
    ui.clockNotes.replaceChildren(
      ...state.config.notes.map((note) => element("p", {}, note)),
    );
  }

  // --------------------------------------------------------------- helpers

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function initials(name) {
    return name
      .split(/\s+/)
      .filter((part) => part && part[0] === part[0].toUpperCase())
      .map((part) => part[0])
      .slice(0, 2)
      .join("") || "?";
  }

  function hue(seed) {
    let hash = 0;
    for (const char of String(seed)) hash = (hash * 31 + char.charCodeAt(0)) % 360;
    return hash;
  }

  function avatar(person) {
    const node = element("div", { className: "avatar", "aria-hidden": "true" }, initials(person.name));
    node.style.background = `hsl(${hue(person.user_id)} 55% 52%)`;
    return node;
  }

  function formatSize(bytes) {
    if (bytes == null) return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function formatTime(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString("nl-NL", {
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  let toastTimer = null;
  function toast(text) {
    ui.toast.textContent = text;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (ui.toast.hidden = true), 3500);
  }

  function showAlert(text) {
    ui.alertText.textContent = text;
    ui.alert.hidden = false;
    ui.alertOk.focus();
  }
  ui.alertOk.addEventListener("click", () => (ui.alert.hidden = true));
  ui.lightbox.addEventListener("click", () => (ui.lightbox.hidden = true));

  // ----------------------------------------------------------------- picker

  function renderPeople() {
    const people = state.config.people;
    const groups = ROLE_GROUPS.map(([role, heading]) => {
      const members = people.filter((person) => (ROLE_LABELS[person.role] ? person.role : "telegram") === role);
      if (!members.length) return null;
      return element(
        "section",
        { className: "people-group" },
        element("h2", {}, heading),
        ...members.map(personRow),
      );
    });
    const shown = groups.filter(Boolean);
    ui.people.replaceChildren(
      ...(shown.length ? shown : [element("p", { className: "empty" }, "Nobody here yet · Nog niemand")]),
    );
  }

  function personRow(person) {
    const label = ROLE_LABELS[person.role] || person.role;
    const row = element(
      "div",
      { className: "person", dataset: { userId: person.user_id, role: person.role } },
      element(
        "button",
        {
          type: "button",
          className: "person-open",
          title: `Chat as ${person.name}`,
          onclick: () => openChat(person.user_id),
        },
        avatar(person),
        element(
          "span",
          { className: "person-text" },
          element("span", { className: "person-name" }, person.name),
          element(
            "span",
            { className: "person-detail" },
            element("span", { className: `role role-${person.role}` }, label),
            person.detail ? ` ${person.detail}` : "",
          ),
        ),
      ),
      element(
        "a",
        {
          className: "person-tab",
          href: `${location.pathname}${location.search}#user=${person.user_id}`,
          target: "_blank",
          rel: "noopener",
          title: `Open ${person.name} in a new tab · in een nieuw tabblad`,
          "aria-label": `Open ${person.name} in a new tab`,
        },
        "↗",
      ),
    );
    return row;
  }

  ui.newUser.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = ui.newUserName.value.trim();
    if (!name) return;
    try {
      const user = await postJson(control("/users"), { first_name: name, language_code: "nl" });
      ui.newUserName.value = "";
      await loadConfig();
      openChat(user.id);
    } catch (error) {
      toast(String(error.message || error));
    }
  });

  // ------------------------------------------------------------------ views

  function currentUserId() {
    const match = /user=(\d+)/.exec(location.hash);
    return match ? Number(match[1]) : null;
  }

  function openChat(userId) {
    if (currentUserId() !== userId) {
      location.hash = `user=${userId}`; // hashchange calls route()
    } else {
      route();
    }
  }

  function showPicker() {
    state.generation += 1;
    state.me = null;
    document.title = state.config.title;
    renderPeople();
    ui.pickerClockSlot.append(ui.clock);
    ui.chat.hidden = true;
    ui.picker.hidden = false;
  }

  async function route() {
    const userId = currentUserId();
    const person = state.config.people.find((candidate) => candidate.user_id === userId);
    if (!person) {
      if (userId !== null) history.replaceState(null, "", location.pathname + location.search);
      showPicker();
      return;
    }
    await startChat(person);
  }

  ui.back.addEventListener("click", () => {
    history.pushState(null, "", location.pathname + location.search);
    showPicker();
  });
  window.addEventListener("hashchange", () => route());

  // ------------------------------------------------------------------- chat

  async function startChat(person) {
    const generation = ++state.generation;
    state.me = person;
    state.seq = 0;
    state.bubbles.clear();
    state.pendingPresses.clear();
    state.keyboardHidden = false;
    document.title = `${person.name} – ${state.config.title}`;
    ui.me.replaceChildren(
      avatar(person),
      element("span", { className: "me-label" }, "Jij bent · You are"),
      element("span", { className: "me-name" }, person.name),
      element("span", { className: `role role-${person.role}` }, ROLE_LABELS[person.role] || person.role),
      person.detail ? element("span", { className: "me-detail" }, person.detail) : null,
    );
    ui.status.textContent = `@${state.config.bot.username}`;
    ui.messages.replaceChildren();
    ui.chatClockSlot.append(ui.clock);
    ui.picker.hidden = true;
    ui.chat.hidden = false;
    closeCommands();
    try {
      const chat = await api(control(`/chats/${person.user_id}/messages`));
      if (generation !== state.generation) return;
      for (const message of chat.messages) renderMessage(message);
      state.seq = chat.seq;
      setReplyKeyboard(chat.reply_keyboard);
      scrollToEnd(true);
    } catch (error) {
      toast(`Could not open the chat: ${error.message}`);
    }
    ui.text.focus();
    listen(person.user_id, generation);
  }

  async function listen(chatId, generation) {
    let failures = 0;
    while (generation === state.generation) {
      try {
        const result = await api(
          control(`/chats/${chatId}/wait?after=${state.seq}&timeout=${WAIT_SECONDS}&count=1`),
        );
        if (generation !== state.generation) return;
        failures = 0;
        ui.status.textContent = `@${state.config.bot.username}`;
        for (const event of result.events) handleEvent(event);
        state.seq = Math.max(state.seq, result.seq);
        setReplyKeyboard(result.chat_state.reply_keyboard);
      } catch (error) {
        if (generation !== state.generation) return;
        failures += 1;
        ui.status.textContent = "offline – retrying · opnieuw verbinden…";
        await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 1000 * failures)));
      }
    }
  }

  function handleEvent(event) {
    if (event.seq <= state.seq) return;
    switch (event.type) {
      case "message": {
        // Follow the conversation only if the reader was already at its end.
        const follow = state.stuck || !event.from_bot;
        if (event.from_bot) setTyping(false);
        renderMessage(event.message);
        if (follow) scrollToEnd(true);
        break;
      }
      case "edit":
        renderMessage(event.message);
        break;
      case "delete": {
        const bubble = state.bubbles.get(event.message_id);
        if (bubble) bubble.remove();
        state.bubbles.delete(event.message_id);
        break;
      }
      case "callback_answer": {
        settlePress(event.message_id);
        const answer = event.answer || {};
        if (answer.url) window.open(answer.url, "_blank", "noopener");
        if (answer.text) (answer.show_alert ? showAlert : toast)(answer.text);
        break;
      }
      case "chat_action":
        setTyping(true);
        break;
      default:
        break;
    }
  }

  function setTyping(on) {
    clearTimeout(state.typingTimer);
    ui.typing.hidden = !on;
    // Telegram shows an action for 5 seconds unless the bot repeats it.
    if (on) state.typingTimer = setTimeout(() => (ui.typing.hidden = true), 5000);
  }

  function nearBottom() {
    const box = ui.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  // Like Telegram: a reader at the end of the chat stays there while messages arrive and the
  // keyboard or the clock drawer take room; a reader who scrolled up is left alone.
  function scrollToEnd(force) {
    if (!force && !state.stuck) return;
    state.stuck = true;
    ui.messages.scrollTop = ui.messages.scrollHeight;
    requestAnimationFrame(() => (ui.messages.scrollTop = ui.messages.scrollHeight));
  }
  ui.messages.addEventListener("scroll", () => {
    state.stuck = nearBottom();
  });
  new ResizeObserver(() => scrollToEnd(false)).observe(ui.messages);

  // --------------------------------------------------------------- messages

  function renderMessage(message) {
    const fromBot = message.sandbox ? message.sandbox.from_bot : message.from && message.from.is_bot;
    const bubble = element(
      "div",
      { className: "bubble" },
      message.reply_to_message ? quote(message.reply_to_message) : null,
      ...content(message),
      element(
        "span",
        { className: "meta" },
        message.edit_date ? element("span", { className: "edited" }, "bewerkt · edited ") : null,
        formatTime(message.date),
      ),
    );
    const row = element(
      "div",
      {
        className: `message ${fromBot ? "bot" : "user"}`,
        dataset: { messageId: message.message_id },
      },
      bubble,
    );
    const inline = message.reply_markup && message.reply_markup.inline_keyboard;
    if (inline && inline.length) row.append(inlineKeyboard(message.message_id, inline));
    const old = state.bubbles.get(message.message_id);
    if (old) {
      old.replaceWith(row);
      if (old.classList.contains("flash") || message.edit_date) flash(row);
    } else {
      ui.messages.append(row);
    }
    state.bubbles.set(message.message_id, row);
    settlePressIfChanged(message.message_id);
  }

  function flash(row) {
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 900);
  }

  function quote(replied) {
    const text = replied.text || replied.caption || (replied.photo ? "📷 Foto" : "…");
    return element("div", { className: "quote" }, text.slice(0, 120));
  }

  function content(message) {
    const parts = [];
    if (message.photo && message.photo.length) {
      const largest = message.photo[message.photo.length - 1];
      const img = element("img", {
        className: "photo",
        src: fileUrl(largest.file_id),
        alt: message.caption || "photo",
        width: largest.width,
        height: largest.height,
        loading: "lazy",
        onclick: () => {
          ui.lightboxImg.src = fileUrl(largest.file_id);
          ui.lightbox.hidden = false;
        },
      });
      img.addEventListener("load", () => {
        const row = img.closest(".message");
        // A photo near the end grows the chat after it was scrolled: keep the end in view.
        if (row && !row.nextElementSibling?.nextElementSibling) scrollToEnd(false);
      });
      parts.push(img);
    }
    if (message.document) parts.push(documentCard(message.document));
    if (message.voice) parts.push(element("audio", { controls: true, src: fileUrl(message.voice.file_id) }));
    if (message.audio) parts.push(element("audio", { controls: true, src: fileUrl(message.audio.file_id) }));
    if (message.video) {
      parts.push(element("video", { className: "photo", controls: true, src: fileUrl(message.video.file_id) }));
    }
    if (message.video_note) {
      parts.push(element("video", { className: "photo video-note", controls: true, src: fileUrl(message.video_note.file_id) }));
    }
    if (message.sticker) parts.push(element("div", { className: "sticker" }, message.sticker.emoji || "🖼"));
    if (message.location) {
      parts.push(element("div", { className: "text" }, `📍 ${message.location.latitude}, ${message.location.longitude}`));
    }
    const text = message.text ?? message.caption;
    const entities = message.text != null ? message.entities : message.caption_entities;
    if (text) parts.push(element("div", { className: "text" }, renderEntities(text, entities || [])));
    if (!parts.length) parts.push(element("div", { className: "text muted" }, "(a message the page cannot show)"));
    return parts;
  }

  function documentCard(document_) {
    const name = document_.file_name || "document";
    return element(
      "a",
      {
        className: "document",
        href: fileUrl(document_.file_id),
        download: name,
        title: `Download ${name}`,
      },
      element("span", { className: "document-icon", "aria-hidden": "true" }, "📄"),
      element(
        "span",
        { className: "document-text" },
        element("span", { className: "document-name" }, name),
        element("span", { className: "document-size" }, [formatSize(document_.file_size), document_.mime_type].filter(Boolean).join(" · ")),
      ),
    );
  }

  // Entities count UTF-16 code units, which is exactly how JavaScript indexes strings.
  function renderEntities(text, entities) {
    const sorted = [...entities].sort((a, b) => a.offset - b.offset || b.length - a.length);
    function build(start, end, list) {
      const fragment = document.createDocumentFragment();
      let position = start;
      let index = 0;
      while (index < list.length) {
        const entity = list[index];
        if (entity.offset < position) {
          index += 1; // overlaps the previous one: Telegram does not send those
          continue;
        }
        if (entity.offset > position) fragment.append(text.slice(position, entity.offset));
        const stop = Math.min(entity.offset + entity.length, end);
        const inner = [];
        let next = index + 1;
        while (next < list.length && list[next].offset < stop) {
          if (list[next].offset + list[next].length <= stop) inner.push(list[next]);
          next += 1;
        }
        const node = entityElement(entity, text.slice(entity.offset, stop));
        node.append(build(entity.offset, stop, inner));
        fragment.append(node);
        position = stop;
        index = next;
      }
      if (position < end) fragment.append(text.slice(position, end));
      return fragment;
    }
    return build(0, text.length, sorted);
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return ["http:", "https:", "tg:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function entityElement(entity, covered) {
    switch (entity.type) {
      case "bold":
        return element("b");
      case "italic":
        return element("i");
      case "underline":
        return element("u");
      case "strikethrough":
        return element("s");
      case "spoiler":
        return element("span", { className: "spoiler", onclick: (event) => event.currentTarget.classList.add("revealed") });
      case "code":
        return element("code");
      case "pre":
        return element("pre", { dataset: entity.language ? { language: entity.language } : {} });
      case "blockquote":
      case "expandable_blockquote":
        return element("blockquote");
      case "text_link": {
        const href = safeUrl(entity.url);
        return href ? element("a", { href, target: "_blank", rel: "noopener" }) : element("span");
      }
      case "url": {
        const href = safeUrl(/^[a-z]+:/i.test(covered) ? covered : `https://${covered}`);
        return href ? element("a", { href, target: "_blank", rel: "noopener" }) : element("span");
      }
      case "email":
        return element("a", { href: `mailto:${covered}` });
      case "bot_command":
        return element("a", {
          href: "#",
          className: "command",
          onclick: (event) => {
            event.preventDefault();
            sendText(covered.split("@")[0]);
          },
        });
      default:
        return element("span", { className: `entity-${entity.type}` });
    }
  }

  // --------------------------------------------------------------- keyboards

  function inlineKeyboard(messageId, rows) {
    return element(
      "div",
      { className: "inline-keyboard" },
      ...rows.map((row) =>
        element("div", { className: "inline-row" }, ...row.map((button) => inlineButton(messageId, button))),
      ),
    );
  }

  function inlineButton(messageId, button) {
    if (button.url) {
      const href = safeUrl(button.url);
      return element("a", { className: "inline-button", href, target: "_blank", rel: "noopener" }, `${button.text} ↗`);
    }
    if (button.callback_data === undefined) {
      return element("button", { className: "inline-button", type: "button", disabled: true, title: "not simulated" }, button.text);
    }
    const node = element("button", { className: "inline-button", type: "button" }, button.text);
    node.addEventListener("click", () => press(messageId, button.callback_data, node));
    return node;
  }

  async function press(messageId, data, node) {
    node.classList.add("pressed");
    state.pendingPresses.set(messageId, node);
    // Telegram clients give up on an unanswered button after a while; so does this page.
    setTimeout(() => settlePress(messageId), 8000);
    try {
      await postJson(control("/callback"), { user_id: state.me.user_id, message_id: messageId, data });
    } catch (error) {
      settlePress(messageId);
      toast(String(error.message || error));
    }
  }

  function settlePress(messageId) {
    const node = state.pendingPresses.get(messageId);
    if (node) node.classList.remove("pressed");
    state.pendingPresses.delete(messageId);
  }

  function settlePressIfChanged(messageId) {
    const node = state.pendingPresses.get(messageId);
    if (node && !node.isConnected) state.pendingPresses.delete(messageId);
  }

  function setReplyKeyboard(markup) {
    const same = JSON.stringify(markup || null) === JSON.stringify(state.keyboard);
    if (same) return;
    state.keyboard = markup || null;
    state.keyboardHidden = false;
    drawReplyKeyboard();
  }

  function drawReplyKeyboard() {
    const markup = state.keyboard;
    ui.keyboardToggle.hidden = !markup;
    ui.text.placeholder = (markup && markup.input_field_placeholder) || "Bericht · Message";
    if (!markup || state.keyboardHidden) {
      ui.replyKeyboard.hidden = true;
      ui.replyKeyboard.replaceChildren();
      return;
    }
    ui.replyKeyboard.replaceChildren(
      ...markup.keyboard.map((row) =>
        element(
          "div",
          { className: "reply-row" },
          ...row.map((button) => {
            const label = typeof button === "string" ? button : button.text;
            const simulated = typeof button === "string" || !(button.request_contact || button.request_location || button.request_poll || button.web_app || button.request_users || button.request_chat);
            return element(
              "button",
              {
                type: "button",
                className: "reply-button",
                disabled: !simulated,
                title: simulated ? null : "not simulated",
                onclick: () => sendText(label),
              },
              label,
            );
          }),
        ),
      ),
    );
    ui.replyKeyboard.hidden = false;
    scrollToEnd(false);
  }

  ui.keyboardToggle.addEventListener("click", () => {
    state.keyboardHidden = !state.keyboardHidden;
    drawReplyKeyboard();
  });

  // ------------------------------------------------------------------ sending

  async function sendText(text) {
    const trimmed = text.trim();
    if (!trimmed || !state.me) return;
    closeCommands();
    try {
      await postJson(control("/messages"), { user_id: state.me.user_id, text: trimmed });
    } catch (error) {
      toast(String(error.message || error));
    }
  }

  async function sendFile(kind, file) {
    if (!file || !state.me) return;
    const caption = ui.text.value.trim();
    const payload = { user_id: state.me.user_id };
    payload[kind] = `attach://${kind}`;
    if (caption) payload.caption = caption;
    if (kind === "document") {
      payload.file_name = file.name;
      payload.mime_type = file.type || "application/octet-stream";
    }
    const form = new FormData();
    form.append("payload", JSON.stringify(payload));
    form.append(kind, file, file.name);
    try {
      await api(control("/messages"), { method: "POST", body: form });
      ui.text.value = "";
      autoGrow();
    } catch (error) {
      toast(`${file.name}: ${error.message}`);
    }
  }

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.text.value;
    ui.text.value = "";
    autoGrow();
    sendText(text);
    ui.text.focus();
  });

  ui.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });

  function autoGrow() {
    ui.text.style.height = "auto";
    ui.text.style.height = `${Math.min(ui.text.scrollHeight, 140)}px`;
  }
  ui.text.addEventListener("input", autoGrow);

  ui.photoInput.addEventListener("change", () => {
    const [file] = ui.photoInput.files;
    ui.photoInput.value = "";
    sendFile("photo", file);
  });
  ui.fileInput.addEventListener("change", () => {
    const [file] = ui.fileInput.files;
    ui.fileInput.value = "";
    sendFile("document", file);
  });

  // ----------------------------------------------------------------- commands

  function commandsFor(person) {
    const menus = state.config.commands || {};
    return menus[person.language_code] || menus[""] || [];
  }

  function closeCommands() {
    ui.commandsMenu.hidden = true;
  }

  ui.commandsButton.addEventListener("click", async () => {
    if (!ui.commandsMenu.hidden) return closeCommands();
    // The bot may set its commands after the page loaded.
    if (!Object.keys(state.config.commands || {}).length) await loadConfig().catch(() => {});
    const commands = commandsFor(state.me || {});
    ui.commandsMenu.replaceChildren(
      ...(commands.length
        ? commands.map((command) =>
            element(
              "button",
              { type: "button", className: "command-item", onclick: () => sendText(`/${command.command}`) },
              element("span", { className: "command-name" }, `/${command.command}`),
              element("span", { className: "command-description" }, command.description),
            ),
          )
        : [element("p", { className: "empty" }, "The bot set no commands · Geen opdrachten")]),
    );
    ui.commandsMenu.hidden = false;
  });

  // -------------------------------------------------------------------- clock

  function showClock(view) {
    state.clock = view;
    state.clockReceived = Date.now();
    ui.clock.hidden = false;
    ui.clockToggle.hidden = false;
    tickClock();
  }

  function tickClock() {
    if (!state.clock) return;
    const now = new Date(state.clock.epoch_ms + (Date.now() - state.clockReceived));
    ui.clockNow.textContent = now.toLocaleString("nl-NL", {
      timeZone: state.clock.timezone,
      weekday: "short",
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
    const offset = state.clock.offset_seconds;
    ui.clockMoved.hidden = !state.clock.moved;
    if (state.clock.moved) {
      const sign = offset < 0 ? "−" : "+";
      const total = Math.abs(offset);
      const days = Math.floor(total / 86400);
      const hours = Math.floor((total % 86400) / 3600);
      const minutes = Math.floor((total % 3600) / 60);
      const parts = [days && `${days}d`, hours && `${hours}h`, (minutes || (!days && !hours)) && `${minutes}m`].filter(Boolean);
      ui.clockMoved.textContent = `${sign}${parts.join(" ")} vs. real time · t.o.v. echt`;
    }
  }
  setInterval(tickClock, 1000);

  async function moveClock(move) {
    try {
      const view = await postJson("/chat/api/clock", { move });
      showClock(view);
      toast(`🕒 ${ui.clockNow.textContent}`);
    } catch (error) {
      toast(String(error.message || error));
    }
  }

  ui.clock.querySelectorAll("[data-move]").forEach((button) =>
    button.addEventListener("click", () => moveClock(button.dataset.move)),
  );
  ui.clockForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const move = ui.clockInput.value.trim();
    if (move) moveClock(move).then(() => (ui.clockInput.value = ""));
  });
  ui.clockToggle.addEventListener("click", () => {
    ui.chatClockSlot.hidden = !ui.chatClockSlot.hidden;
  });

  // ------------------------------------------------------------------- start

  async function refreshConfig() {
    try {
      await loadConfig();
      if (!state.me) renderPeople();
    } catch {
      // The next refresh tries again; the chat's own long poll shows the outage.
    }
  }

  async function main() {
    try {
      await loadConfig();
    } catch (error) {
      document.body.replaceChildren(
        element("p", { className: "fatal" }, `The sandbox page cannot start: ${error.message}`),
      );
      return;
    }
    await route();
    // Other tabs move the clock and add people; keep this tab's view of them current.
    setInterval(refreshConfig, CONFIG_REFRESH_MS);
  }

  main();
})();

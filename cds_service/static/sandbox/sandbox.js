/* spine-cds sandbox: scenario picker, evaluate, and the answer shown as an EHR shows it.
   Plain JavaScript, no framework. Everything from the server is put in the page with textContent,
   except card details and the review letter, which the server renders from markdown (raw HTML escaped). */
(function () {
  "use strict";

  var SERVICE_ID = "spine-surgery-order-sign";
  // The page is served at <base>/sandbox; the API and the CDS Hooks endpoints sit beside it.
  var BASE = window.location.pathname.replace(/\/sandbox\/?$/, "");
  var API = BASE + "/sandbox/api";
  var FEEDBACK_URL = BASE + "/cds-services/" + SERVICE_ID + "/feedback";

  var INDICATORS = {
    info: { label: "Info", icon: "i" },
    warning: { label: "Warning", icon: "!" },
    critical: { label: "Critical", icon: "!!" }
  };
  // Procedure-class labels come from the server (GET /sandbox/api/labels, cards/text/wording.yaml).
  var CLASS_LABELS = {};
  // The evidence panel's words (cards/text/evidence_read.yaml, via the same endpoint).
  var EVIDENCE_WORDS = {};
  var SHAPES = ["coded", "ehr", "payer"];
  var LEVEL_COLUMNS = ["instability", "stenosis", "deformity", "prior_fusion", "pseudarthrosis_or_hardware"];

  // ---- text ---------------------------------------------------------------------------------------

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // ---- small DOM helpers ----------------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "testid") node.setAttribute("data-testid", value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function setStatus(node, kind, text) {
    node.className = "status" + (kind ? " status-" + kind : "");
    node.textContent = text || "";
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  // ---- HTTP ---------------------------------------------------------------------------------------

  function describeError(status, body) {
    var issue = body && typeof body === "object" && body.resourceType === "OperationOutcome" && body.issue && body.issue[0];
    if (issue) {
      var where = issue.expression && issue.expression.length ? " at " + issue.expression[0] : "";
      return status + " " + (issue.code || "error") + where + ": " + (issue.diagnostics || "");
    }
    if (body && typeof body === "object" && body.error) {
      return status + " " + body.error;
    }
    return status + " " + (typeof body === "string" && body ? body.slice(0, 300) : "error");
  }

  function call(method, url, body) {
    var options = { method: method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var parsed = text;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { /* not JSON: keep the text */ }
        return { ok: response.ok, status: response.status, body: parsed };
      });
    });
  }

  // ---- scenarios and profiles ---------------------------------------------------------------------

  var state = { scenarios: {}, loadedText: null, loadedScenario: null, loadedShape: null, pending: null };

  // The scenario, shape and seed live in the page URL (?scenario=...&shape=...&seed=...), so a tester can
  // share what they are looking at; opening such a link loads it.
  function rememberInUrl() {
    var params = new URLSearchParams();
    var name = $("scenario-select").value;
    if (name) params.set("scenario", name);
    params.set("shape", $("shape-select").value);
    var seed = $("seed-input").value.trim();
    if (seed && seed !== "0") params.set("seed", seed);
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
  }

  function restoreFromUrl() {
    var params = new URLSearchParams(window.location.search);
    var shape = params.get("shape");
    if (shape && SHAPES.indexOf(shape) >= 0) $("shape-select").value = shape;
    if (params.get("seed") && /^\d+$/.test(params.get("seed"))) $("seed-input").value = params.get("seed");
    var name = params.get("scenario");
    if (name && state.scenarios[name]) {
      $("scenario-select").value = name;
      describeScenario();
      return loadScenario();
    }
    return Promise.resolve();
  }

  function loadProfiles() {
    return call("GET", API + "/profiles").then(function (res) {
      var select = $("profile-select");
      select.textContent = "";
      if (!res.ok) { setStatus($("input-status"), "error", "Profiles: " + describeError(res.status, res.body)); return; }
      res.body.forEach(function (profile) {
        var option = el("option", { value: profile.id, text: profile.id, title: profile.title });
        if (profile["default"]) option.selected = true;
        select.appendChild(option);
      });
    });
  }

  function loadLabels() {
    return call("GET", API + "/labels").then(function (res) {
      if (!res.ok) throw new Error(describeError(res.status, res.body));
      CLASS_LABELS = res.body.classes || {};
      EVIDENCE_WORDS = res.body.evidence || {};
    });
  }

  function loadScenarioList() {
    return call("GET", API + "/scenarios").then(function (res) {
      var select = $("scenario-select");
      select.textContent = "";
      if (!res.ok) { setStatus($("input-status"), "error", "Scenarios: " + describeError(res.status, res.body)); return; }
      select.appendChild(el("option", { value: "", text: "— choose a scenario —" }));
      res.body.forEach(function (scenario) {
        state.scenarios[scenario.name] = scenario;
        select.appendChild(el("option", { value: scenario.name, text: scenario.name }));
      });
    });
  }

  function describeScenario() {
    var scenario = state.scenarios[$("scenario-select").value];
    var node = $("scenario-description");
    node.textContent = "";
    if (!scenario) return;
    node.appendChild(document.createTextNode(scenario.description + " "));
    var topics = scenario.expected_topics.length ? scenario.expected_topics.join(", ") : "no cards";
    node.appendChild(el("span", { className: "expected", text: "Expected: " + topics + "." }));
  }

  function loadScenario() {
    var name = $("scenario-select").value;
    var status = $("input-status");
    if (!name) { setStatus(status, "error", "Choose a scenario first."); return Promise.resolve(); }
    var seed = $("seed-input").value.trim() || "0";
    var shape = $("shape-select").value;
    var as = $("load-as").value;
    rememberInUrl();
    setStatus(status, "busy", "Loading " + name + "…");
    state.pending = call("GET", API + "/scenarios/" + encodeURIComponent(name) + "?seed=" + encodeURIComponent(seed) +
                         "&shape=" + encodeURIComponent(shape))
      .then(function (res) {
        var note = $("shape-note");
        if (!res.ok) { note.hidden = true; setStatus(status, "error", describeError(res.status, res.body)); return; }
        var text = JSON.stringify(as === "bundle" ? res.body.bundle : res.body.request, null, 2);
        $("payload").value = text;
        state.loadedText = text;
        state.loadedScenario = name;
        state.loadedShape = res.body.shape;
        // Where the shape cannot carry a fact the scenario turns on, the scenario says why its answer differs.
        note.textContent = res.body.shape_note || "";
        note.hidden = !res.body.shape_note;
        setStatus(status, "ok", "Loaded " + name + " (seed " + res.body.seed + ", " + res.body.shape + " shape) as " +
          (as === "bundle" ? "a FHIR Bundle" : "an order-sign request") + ".");
      })
      .catch(function (err) { setStatus(status, "error", "Could not load the scenario: " + err); })
      .then(function () { state.pending = null; });
    return state.pending;
  }

  // ---- evaluate -----------------------------------------------------------------------------------

  function evaluate() {
    var waitFor = state.pending || Promise.resolve();
    return waitFor.then(function () {
      var status = $("input-status");
      var text = $("payload").value;
      if (!text.trim()) { setStatus(status, "error", "Paste an order-sign request or a FHIR Bundle, or pick a scenario."); return; }
      var query = ["profile=" + encodeURIComponent($("profile-select").value)];
      if (state.loadedScenario && text === state.loadedText) {
        query.push("scenario=" + encodeURIComponent(state.loadedScenario));
        query.push("shape=" + encodeURIComponent(state.loadedShape));
      }
      var button = $("evaluate");
      button.disabled = true;
      setStatus(status, "busy", "Evaluating…");
      return call("POST", API + "/evaluate?" + query.join("&"), text).then(function (res) {
        if (!res.ok) { setStatus(status, "error", describeError(res.status, res.body)); return; }
        var cards = res.body.answer.cards || [];
        setStatus(status, "ok", "Evaluated with profile " + res.body.profile + ": " + cards.length +
          (cards.length === 1 ? " card." : " cards."));
        showResults(res.body);
      }).catch(function (err) {
        setStatus(status, "error", "The service could not be reached: " + err);
      }).then(function () { button.disabled = false; });
    });
  }

  function showResults(result) {
    $("results-empty").hidden = true;
    $("results").hidden = false;
    renderCards(result);
    renderDeterminations(result.determinations || []);
    renderLetter(result.letter_html || "");
    renderSystemActions(result.answer.systemActions || []);
    renderOrders(result.orders || []);
    renderLevels(result.levels || []);
    renderEvidence(result.evidence || [], result.unread || [], result.payer_data);
    $("raw-answer").textContent = JSON.stringify(result.answer, null, 2);
  }

  // ---- cards --------------------------------------------------------------------------------------

  function renderCards(result) {
    var container = $("cards");
    var cards = result.answer.cards || [];
    container.textContent = "";
    $("cards-meta").textContent = cards.length + (cards.length === 1 ? " card" : " cards") + " · profile " + result.profile;
    renderExpectation(result, cards);
    if (!cards.length) {
      container.appendChild(el("p", { className: "hint", testid: "no-cards",
        text: "No cards: nothing to check for these orders, or every order is outside spine surgery." }));
      return;
    }
    var context = { hookInstance: result.request.hookInstance, detailHtml: result.detail_html || {} };
    cards.forEach(function (card) { container.appendChild(renderCard(card, context)); });
  }

  function renderExpectation(result, cards) {
    var node = $("expectation");
    node.textContent = "";
    if (!result.expected_topics) { node.hidden = true; return; }
    var actual = cards.map(function (c) { return c.source && c.source.topic ? c.source.topic.code : ""; });
    var missing = result.expected_topics.filter(function (t) { return actual.indexOf(t) < 0; });
    var extra = actual.filter(function (t) { return result.expected_topics.indexOf(t) < 0; });
    var same = !missing.length && !extra.length;
    node.hidden = false;
    node.className = "expectation " + (same ? "expectation-match" : "expectation-differs");
    var text = same
      ? "Topics match scenario " + result.scenario + "."
      : "Topics differ from scenario " + result.scenario +
        (missing.length ? "; missing: " + missing.join(", ") : "") + (extra.length ? "; extra: " + extra.join(", ") : "") + ".";
    if (result.profile !== "nass-2014") text += " (Scenario expectations are written for nass-2014.)";
    node.textContent = text;
  }

  function renderCard(card, context) {
    var indicator = INDICATORS[card.indicator] ? card.indicator : "info";
    var topic = (card.source && card.source.topic) || {};
    var body = el("div", { className: "card-body" });
    var article = el("article", {
      className: "card card-" + indicator, testid: "card", "data-indicator": indicator,
      "data-topic": topic.code || "", "aria-label": INDICATORS[indicator].label + ": " + (card.summary || "")
    }, [el("div", { className: "card-bar", "aria-hidden": "true" }), body]);

    body.appendChild(el("div", { className: "card-head" }, [
      el("span", { className: "indicator indicator-" + indicator, testid: "card-indicator" }, [
        el("span", { className: "indicator-icon", "aria-hidden": "true", text: INDICATORS[indicator].icon }),
        INDICATORS[indicator].label
      ]),
      el("h4", { className: "card-summary", testid: "card-summary", text: card.summary || "" })
    ]));

    var source = card.source || {};
    var sourceLine = el("p", { className: "card-source" }, [
      el("span", { className: "source-label", testid: "card-source", text: source.label || "" })
    ]);
    if (topic.code) {
      sourceLine.appendChild(el("code", { className: "topic-code", testid: "card-topic", title: topic.system || "", text: topic.code }));
      if (topic.display) sourceLine.appendChild(el("span", { className: "topic-display", text: topic.display }));
    }
    if (source.url && /^https?:\/\//.test(source.url)) {
      sourceLine.appendChild(el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer", text: "source" }));
    }
    body.appendChild(sourceLine);

    if (card.detail) {
      // Rendered on the server (markdown-it, raw HTML escaped); shown open: a detail is at most 600 characters.
      var detail = el("div", { className: "markdown", testid: "card-detail" });
      detail.innerHTML = context.detailHtml[card.uuid] || "";
      body.appendChild(detail);
    }

    var feedbackStatus = el("div", { className: "feedback-status", testid: "feedback-status", role: "status", "aria-live": "polite" });
    var controls = [];
    var actions = el("div", { className: "card-actions" });

    var suggestions = card.suggestions || [];
    if (suggestions.length) {
      var group = el("div", { className: "suggestions", role: "group", "aria-label": "Suggestions" });
      suggestions.forEach(function (suggestion) {
        var button = el("button", {
          type: "button", className: "suggestion" + (suggestion.isRecommended ? " recommended" : ""),
          testid: "suggestion-accept", "data-suggestion": suggestion.uuid || "", text: suggestion.label || "Accept"
        });
        button.addEventListener("click", function () {
          sendFeedback(card, { outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }] },
            "Accepted “" + (suggestion.label || "") + "”", controls, feedbackStatus);
        });
        controls.push(button);
        group.appendChild(button);
      });
      actions.appendChild(group);
    }

    var reasons = card.overrideReasons || [];
    var dismissRow = el("div", { className: "dismiss" });
    var selectId = nextId("override");
    var select = el("select", { id: selectId, testid: "override-reason" });
    select.appendChild(el("option", { value: "", text: reasons.length ? "Choose a reason…" : "No reason needed" }));
    reasons.forEach(function (reason, index) {
      select.appendChild(el("option", { value: String(index), text: reason.display || reason.code }));
    });
    var dismiss = el("button", { type: "button", className: "secondary", testid: "dismiss", text: "Dismiss" });
    dismiss.addEventListener("click", function () {
      var feedback = { outcome: "overridden" };
      if (select.value !== "") {
        var reason = reasons[Number(select.value)];
        var coding = { code: reason.code };
        if (reason.system) coding.system = reason.system;
        if (reason.display) coding.display = reason.display;
        feedback.overrideReason = { reason: coding };
      } else if (reasons.length) {
        setStatus(feedbackStatus, "error", "Choose an override reason before dismissing this card.");
        select.focus();
        return;
      }
      sendFeedback(card, feedback, "Dismissed" + (feedback.overrideReason ? " (" + (feedback.overrideReason.reason.display || feedback.overrideReason.reason.code) + ")" : ""),
        controls, feedbackStatus);
    });
    controls.push(select, dismiss);
    dismissRow.appendChild(el("label", { "for": selectId, text: "Override reason" }));
    dismissRow.appendChild(select);
    dismissRow.appendChild(dismiss);
    actions.appendChild(dismissRow);
    body.appendChild(actions);

    var links = (card.links || []).filter(function (link) { return link && /^https?:\/\//.test(link.url || ""); });
    if (links.length) {
      var list = el("ul", { className: "card-links", "aria-label": "Links" });
      links.forEach(function (link) {
        list.appendChild(el("li", {}, [el("a", {
          href: link.url, target: "_blank", rel: "noopener noreferrer", testid: "card-link",
          text: (link.label || link.url) + (link.type === "smart" ? " (SMART app)" : "")
        })]));
      });
      body.appendChild(list);
    }
    body.appendChild(feedbackStatus);
    return article;
  }

  function sendFeedback(card, fields, what, controls, statusNode) {
    var item = { card: card.uuid, outcome: fields.outcome, outcomeTimestamp: new Date().toISOString() };
    if (fields.acceptedSuggestions) item.acceptedSuggestions = fields.acceptedSuggestions;
    if (fields.overrideReason) item.overrideReason = fields.overrideReason;
    controls.forEach(function (control) { control.disabled = true; });
    setStatus(statusNode, "busy", "Sending feedback…");
    return call("POST", FEEDBACK_URL, { feedback: [item] }).then(function (res) {
      if (res.ok && res.body && typeof res.body === "object") {
        if (res.body.stored > 0) {
          setStatus(statusNode, "ok", what + ". Feedback stored.");
        } else {
          setStatus(statusNode, "ok", what + ". Feedback was already recorded (duplicate).");
        }
        return;
      }
      controls.forEach(function (control) { control.disabled = false; });
      if (res.status === 401) {
        setStatus(statusNode, "error", "401 Unauthorized: this deployment requires a signed client JWT on " +
          "/cds-services (CDS_AUTH=required), which the sandbox cannot send. Feedback was not stored.");
      } else {
        setStatus(statusNode, "error", "Feedback not stored: " + describeError(res.status, res.body));
      }
    }).catch(function (err) {
      controls.forEach(function (control) { control.disabled = false; });
      setStatus(statusNode, "error", "Feedback not sent: " + err);
    });
  }

  // ---- system actions (coverage information) ------------------------------------------------------

  function extensionValue(ext) {
    if (ext.valueCode !== undefined) return ext.valueCode;
    if (ext.valueString !== undefined) return ext.valueString;
    if (ext.valueDate !== undefined) return ext.valueDate;
    if (ext.valueCanonical !== undefined) return ext.valueCanonical;
    if (ext.valueBoolean !== undefined) return String(ext.valueBoolean);
    if (ext.valueReference) return ext.valueReference.reference || ext.valueReference.display || "";
    if (ext.valueCoding) return ext.valueCoding.code + (ext.valueCoding.display ? " (" + ext.valueCoding.display + ")" : "");
    if (ext.valueCodeableConcept) {
      var cc = ext.valueCodeableConcept;
      return cc.text || (cc.coding || []).map(function (c) { return c.display || c.code; }).join(", ");
    }
    return "";
  }

  function renderSystemActions(actions) {
    var box = $("system-actions");
    var container = $("system-actions-body");
    container.textContent = "";
    box.hidden = !actions.length;
    if (!actions.length) return;
    $("system-actions-summary").textContent = "Coverage information (" + actions.length +
      (actions.length === 1 ? " system action)" : " system actions)");
    actions.forEach(function (action) {
      var resource = action.resource || {};
      var ref = resource.resourceType ? resource.resourceType + "/" + (resource.id || "?") : "";
      var section = el("div", { className: "system-action", testid: "system-action" }, [
        el("p", { className: "system-action-head" }, [
          el("strong", { text: action.description || action.type || "action" }), " ",
          el("span", { className: "meta", text: (action.type || "") + (ref ? " · " + ref : "") })
        ])
      ]);
      (resource.extension || []).forEach(function (ext) {
        if (!/coverage-information$/.test(ext.url || "")) return;
        var rows = {};
        var order = [];
        (ext.extension || []).forEach(function (part) {
          if (!rows[part.url]) { rows[part.url] = []; order.push(part.url); }
          rows[part.url].push(extensionValue(part));
        });
        var table = el("table", { className: "kv" });
        order.forEach(function (key) {
          table.appendChild(el("tr", {}, [el("th", { scope: "row", text: key }), el("td", { text: rows[key].join(", ") })]));
        });
        section.appendChild(table);
      });
      container.appendChild(section);
    });
  }

  // ---- determinations and letter --------------------------------------------------------------------

  function renderDeterminations(determinations) {
    var container = $("determinations");
    container.textContent = "";
    if (!determinations.length) {
      container.appendChild(el("p", { className: "hint", text: "No spine surgery order: nothing to determine." }));
      return;
    }
    var tbody = el("tbody");
    determinations.forEach(function (d) {
      var codes = el("td", { className: "codes" });
      d.codes.forEach(function (c) {
        codes.appendChild(el("span", { className: "code-determination determination-" + c.determination,
          testid: "code-determination", "data-code": c.code, "data-determination": c.determination,
          title: c.label + ": " + c.determination_text + (c.bundled ? " (bundled)" : ""), text: c.code + " " }));
      });
      tbody.appendChild(el("tr", { testid: "determination", "data-reference": d.reference, "data-determination": d.determination }, [
        el("td", { text: d.name }),
        el("td", { className: "determination-" + d.determination, testid: "determination-text", text: d.determination_text }),
        codes
      ]));
    });
    container.appendChild(el("table", {}, [el("thead", {}, [el("tr", {}, [
      el("th", { scope: "col", text: "Order" }), el("th", { scope: "col", text: "Determination" }),
      el("th", { scope: "col", text: "CPT codes" })])]), tbody]));
  }

  function renderLetter(html) {
    $("letter").innerHTML = html;   // rendered on the server from the letter templates, raw HTML escaped there
  }

  // ---- orders -------------------------------------------------------------------------------------

  function renderOrders(orders) {
    var container = $("orders");
    container.textContent = "";
    if (!orders.length) { container.appendChild(el("p", { className: "hint", text: "No draft orders." })); return; }
    orders.forEach(function (order) {
      var item = el("div", { className: "order", testid: "order", "data-reference": order.reference }, [
        el("div", { className: "order-head" }, [
          el("strong", { className: "order-label", testid: "order-label", text: order.label || order.reference }),
          el("span", { className: "meta" }, [
            el("code", { text: order.reference }),
            order.authoredOn ? " · authored " + order.authoredOn : ""
          ])
        ])
      ]);
      if (!order.procedures.length) {
        item.appendChild(el("p", { className: "hint", text: "Not spine surgery: no cards for this order." }));
      } else {
        var table = el("table", { className: "procedures" }, [el("thead", {}, [el("tr", {}, [
          el("th", { scope: "col", text: "Procedure" }), el("th", { scope: "col", text: "CPT" }),
          el("th", { scope: "col", text: "Levels" })])])]);
        var tbody = el("tbody");
        order.procedures.forEach(function (procedure) {
          var codes = el("td", { className: "codes" });
          procedure.codes.forEach(function (code, i) {
            codes.appendChild(el("code", { className: "cpt", testid: "cpt-code", title: (procedure.code_labels || [])[i] || "", text: code }));
          });
          tbody.appendChild(el("tr", { testid: "procedure" }, [
            el("td", { text: CLASS_LABELS[procedure["class"]] || procedure["class"] }),
            codes,
            el("td", { testid: "procedure-levels", text: procedure.levels.length ? procedure.levels.join(", ")
              : procedure["class"] === "si_fusion" ? "sacroiliac joint" : "none written" })
          ]));
        });
        table.appendChild(tbody);
        item.appendChild(table);
      }
      container.appendChild(item);
    });
  }

  // ---- levels table -------------------------------------------------------------------------------

  function renderCell(cell, column) {
    var td = el("td", { "data-column": column, testid: "cell-" + column });
    if (!cell) {
      td.className = "empty-cell";
      td.appendChild(el("span", { "aria-label": "nothing documented", text: "—" }));
      return td;
    }
    td.className = cell.present ? "fact present" : "fact absent";
    td.appendChild(el("div", { className: "fact-text", text: cell.text }));
    var refs = el("div", { className: "evidence" });
    cell.evidence.forEach(function (evidence) {
      refs.appendChild(el("div", { className: "evidence-item", title: evidence.description }, [
        el("span", { className: "evidence-ref", testid: "evidence-ref", text: evidence.reference }), " ",
        el("span", { className: "evidence-date", text: evidence.date || "undated" })
      ]));
    });
    td.appendChild(refs);
    return td;
  }

  function renderLevels(levels) {
    var tbody = $("levels-table").querySelector("tbody");
    tbody.textContent = "";
    $("levels-empty").hidden = levels.length > 0;
    $("levels-table").hidden = levels.length === 0;
    levels.forEach(function (row) {
      var ordered = el("td", { className: "ordered" });
      if (row.ordered.length) {
        row.ordered.forEach(function (cls) { ordered.appendChild(el("span", { className: "chip", text: CLASS_LABELS[cls] || cls })); });
      } else {
        ordered.appendChild(el("span", { className: "muted", text: "not ordered" }));
      }
      var tr = el("tr", { testid: "level-row", "data-level": row.interspace || "none",
                          className: row.ordered.length ? "is-ordered" : "not-ordered" }, [
        el("th", { scope: "row", testid: "level", text: row.interspace || "No single level" }), ordered
      ]);
      LEVEL_COLUMNS.forEach(function (column) { tr.appendChild(renderCell(row[column], column)); });
      tbody.appendChild(tr);
    });
  }

  // ---- evidence read -------------------------------------------------------------------------------

  function words(key, fallback) { return EVIDENCE_WORDS[key] || fallback; }

  function renderEvidence(rows, unread, payerData) {
    var list = $("evidence-list");
    list.textContent = "";
    var resources = {};
    rows.forEach(function (row) { resources[row.reference] = true; });
    var meta = words("pieces", "{count} pieces of evidence from {resources} resources")
      .replace("{count}", rows.length).replace("{resources}", Object.keys(resources).length);
    $("evidence-meta").textContent = meta;
    $("evidence-payer").textContent = payerData ? words("payer_data", "Claims read.") : "";
    $("evidence-payer").hidden = !payerData;
    if (!rows.length) list.appendChild(el("li", { className: "hint", text: words("nothing_cited", "No evidence cited.") }));
    rows.forEach(function (row) {
      var head = el("div", { className: "evidence-row-head" }, [
        el("code", { className: "evidence-ref", testid: "evidence-reference", text: row.reference }),
        row.source ? el("span", { className: "evidence-source", testid: "evidence-source", text: row.source }) : null,
        el("span", { className: "evidence-date", testid: "evidence-date", text: row.date || words("undated", "undated") })
      ]);
      var item = el("li", { className: "evidence-row", testid: "evidence-row", "data-type": row.resource_type,
                            "data-reference": row.reference }, [head,
        el("div", { className: "evidence-what", testid: "evidence-what", text: row.what })]);
      // The description often is the quote itself; show the quote apart only when it adds words.
      if (row.quote && row.what.indexOf(row.quote) < 0) {
        item.appendChild(el("blockquote", { className: "evidence-quote", testid: "evidence-quote",
                                            title: words("quoted", "Quoted"), text: row.quote }));
      }
      if (row.counted_as.length) {
        item.appendChild(el("div", { className: "evidence-counted", testid: "evidence-counted" }, [
          el("span", { className: "muted", text: words("counted_as", "Counted as") + ": " }), row.counted_as.join("; ")]));
      }
      var used = el("div", { className: "evidence-criteria" }, [
        el("span", { className: "muted", text: words("used_by", "Used by") + ": " })]);
      row.criteria.forEach(function (c) {
        used.appendChild(el("span", { className: "chip chip-" + c.status, testid: "evidence-criterion",
                                      "data-criterion": c.id, title: c.id + " · " + c.status, text: c.title }));
      });
      item.appendChild(used);
      list.appendChild(item);
    });
    var unreadList = $("unread-list");
    unreadList.textContent = "";
    if (!unread.length) unreadList.appendChild(el("li", { className: "hint", testid: "nothing-unread",
                                                         text: words("nothing_unread", "Nothing reported unread.") }));
    unread.forEach(function (text) { unreadList.appendChild(el("li", { testid: "unread-item", text: text })); });
  }

  // ---- start --------------------------------------------------------------------------------------

  function start() {
    $("scenario-select").addEventListener("change", function () { describeScenario(); if (this.value) loadScenario(); else rememberInUrl(); });
    $("load-scenario").addEventListener("click", loadScenario);
    $("load-as").addEventListener("change", function () { if ($("scenario-select").value) loadScenario(); });
    $("shape-select").addEventListener("change", function () { if ($("scenario-select").value) loadScenario(); else rememberInUrl(); });
    $("evaluate").addEventListener("click", evaluate);
    Promise.all([loadProfiles(), loadScenarioList(), loadLabels()]).then(restoreFromUrl).then(function () {
      document.body.setAttribute("data-ready", "true");
    }).catch(function (err) {
      setStatus($("input-status"), "error", "The sandbox API could not be reached: " + err);
    });
  }

  window.SpineSandbox = { escapeHtml: escapeHtml };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

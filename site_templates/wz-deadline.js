/* Deadline calculator of the rules page. It follows generator/calendar.py:
   day 0 is the day the clock starts and does not count; working days come from
   the table embedded at build time; hours are elapsed time; office hours count
   only office periods on working days. Times are the city's local time (UTC+8). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("wz-rules").textContent);
  var lang = document.documentElement.lang && document.documentElement.lang.indexOf("en") === 0 ? "en" : "zh";
  var OFFSET = 8 * 60;
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function iso(d) { return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  // A "local" time is held as a Date whose UTC fields are the local wall clock.
  function addDays(d, n) { return new Date(d.getTime() + n * 86400000); }
  function dayOnly(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())); }
  function dayInfo(d) {
    var hit = data.calendar.days[iso(d)];
    if (hit) return { working: hit[0] === 1, why: lang === "en" ? hit[2] : hit[1] };
    var wd = d.getUTCDay();
    return { working: wd !== 0 && wd !== 6, why: "" };
  }
  function minuteOf(d) { return d.getUTCHours() * 60 + d.getUTCMinutes() + d.getUTCSeconds() / 60; }
  function endOf(day) { return new Date(day.getTime() + data.end_of_day * 60000); }
  function nextWorking(d) { do { d = addDays(d, 1); } while (!dayInfo(d).working); return d; }
  function fmt(d) { return iso(d) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()); }
  function fmtDue(d) {  // the end of a day shows as 24:00 of that day, as the Python side does
    if (data.end_of_day === 1440 && d.getUTCHours() === 0 && d.getUTCMinutes() === 0) return iso(addDays(d, -1)) + " 24:00";
    return fmt(d);
  }
  function dayCount(start, n, calendarDays, lines) {
    var d = dayOnly(start);
    if (data.late_receipt_after !== null) {
      var info = dayInfo(d);
      if (minuteOf(start) >= data.late_receipt_after || !info.working) {
        d = nextWorking(d);
        lines.push((lang === "en" ? "counts as received on " : "视为收到日：") + iso(d));
      }
    }
    lines.push(lang === "en" ? "Day 0 " + iso(d) + ": the day of receipt does not count" : "第0日 " + iso(d) + "：收到当日不计入");
    var counted = 0;
    while (counted < n) {
      d = addDays(d, 1);
      var i = dayInfo(d);
      if (calendarDays || i.working) {
        counted += 1;
        lines.push((lang === "en" ? (calendarDays ? "Day " : "Working day ") + counted + ": " : "第" + counted + (calendarDays ? "日：" : "个工作日：")) + iso(d) + (i.why && i.working ? " (" + i.why + ")" : ""));
      } else {
        lines.push(iso(d) + (lang === "en" ? " skipped: " : " 跳过：") + (i.why || (lang === "en" ? "weekend" : "周末")));
      }
    }
    if (calendarDays && !dayInfo(d).working) { d = nextWorking(d); lines.push((lang === "en" ? "last day is a rest day: moved to " : "最后一日为休息日，顺延至 ") + iso(d)); }
    return endOf(d);
  }
  function officeHours(start, hours, lines) {
    var remaining = hours * 60, day = dayOnly(start), guard = 0;
    while (remaining > 1e-9 && guard++ < 4000) {
      var i = dayInfo(day);
      if (!i.working) { lines.push(iso(day) + (lang === "en" ? " skipped: " : " 跳过：") + (i.why || (lang === "en" ? "weekend" : "周末"))); day = addDays(day, 1); continue; }
      for (var k = 0; k < data.office.length; k++) {
        var a = new Date(day.getTime() + data.office[k][0] * 60000), b = new Date(day.getTime() + data.office[k][1] * 60000);
        if (b <= start) continue;
        if (a < start) a = start;
        var len = (b - a) / 60000;
        if (len <= 0) continue;
        if (len >= remaining - 1e-9) { var due = new Date(a.getTime() + remaining * 60000); lines.push(iso(day) + (lang === "en" ? " counted until " : " 计至 ") + fmt(due)); return due; }
        remaining -= len;
      }
      lines.push(iso(day) + (lang === "en" ? " office time counted" : " 计入办公时间"));
      day = addDays(day, 1);
    }
    return null;
  }
  function deadline(start, amount, unit, lines) {
    if (unit === "hours") { lines.push((lang === "en" ? "Clock starts: " : "计时开始：") + fmt(start)); return new Date(start.getTime() + amount * 3600000); }
    if (unit === "working_days") return dayCount(start, amount, false, lines);
    if (unit === "days") return dayCount(start, amount, true, lines);
    if (unit === "office_hours") return officeHours(start, amount, lines);
    return null;
  }
  function inOffice(start) {
    if (!dayInfo(dayOnly(start)).working) return false;
    var m = minuteOf(start);
    return data.office.some(function (p) { return p[0] <= m && m < p[1]; });
  }
  function compute(startText, category, channel) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(startText);
    if (!m) return [];
    var start = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]));
    var out = [];
    data.stages.forEach(function (s) {
      var limit = s.by_channel[channel] || s.by_category[category] || s.limit;
      var use = limit.by_arrival && !inOffice(start) ? limit.rest : limit.office;
      var lines = [];
      var due = deadline(start, use[0], use[1], lines);
      out.push({ stage: s.name, label: lang === "en" ? s.en : s.zh, due: due ? fmtDue(due) : null, lines: lines });
      if (s.cap) { var capLines = []; var cap = deadline(start, s.cap[0], s.cap[1], capLines);
        out.push({ stage: s.name + ":cap", label: (lang === "en" ? s.en + " (longest with extensions)" : s.zh + "（延期上限）"), due: cap ? fmtDue(cap) : null, lines: capLines }); }
    });
    return out;
  }
  window.wzDeadline = compute;
  var form = document.getElementById("wz-calc"), outBox = document.getElementById("wz-calc-out");
  function show() {
    var res = compute(document.getElementById("wz-start").value, document.getElementById("wz-category").value, document.getElementById("wz-channel").value);
    outBox.innerHTML = "";
    res.forEach(function (r) {
      var sec = document.createElement("section");
      var h = document.createElement("h3"); h.textContent = r.label + (lang === "en" ? " due: " : " 到期：") + (r.due || "—"); sec.appendChild(h);
      var ol = document.createElement("ol"); r.lines.forEach(function (l) { var li = document.createElement("li"); li.textContent = l; ol.appendChild(li); });
      var det = document.createElement("details"); var sum = document.createElement("summary"); sum.textContent = lang === "en" ? "How it is counted" : "计算过程";
      det.appendChild(sum); det.appendChild(ol); sec.appendChild(det); sec.setAttribute("data-stage", r.stage); sec.setAttribute("data-due", r.due || "");
      outBox.appendChild(sec);
    });
  }
  if (form) { form.addEventListener("submit", show); show(); }
})();

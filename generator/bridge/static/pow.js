/* Proof of work for the petition form, self-hosted (no third-party service).
 * Finds a nonce such that SHA-256(form_token + ":" + nonce) starts with
 * data-pow-bits zero bits, working in small slices so the page stays
 * responsive, and puts it in the hidden "pow" field. Without JavaScript the
 * form still posts; the bridge then applies a stricter limit and moderation. */
(function () {
  "use strict";
  var K = new Uint32Array([
    0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
    0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
    0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
    0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
    0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
    0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
    0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
    0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
  var W = new Uint32Array(64);
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
  // SHA-256 of an ASCII string; returns the first 32-bit word of the digest,
  // which is all the leading-zero test needs (difficulty is at most 32 bits).
  function firstWord(str) {
    var n = str.length, blocks = ((n + 8) >> 6) + 1, words = new Uint32Array(blocks * 16), i;
    for (i = 0; i < n; i++) words[i >> 2] |= (str.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
    words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    words[blocks * 16 - 1] = n * 8;
    var h0=0x6a09e667,h1=0xbb67ae85,h2=0x3c6ef372,h3=0xa54ff53a,h4=0x510e527f,h5=0x9b05688c,h6=0x1f83d9ab,h7=0x5be0cd19;
    for (var b = 0; b < blocks; b++) {
      for (i = 0; i < 16; i++) W[i] = words[b * 16 + i];
      for (i = 16; i < 64; i++) {
        var s0 = rotr(W[i-15], 7) ^ rotr(W[i-15], 18) ^ (W[i-15] >>> 3);
        var s1 = rotr(W[i-2], 17) ^ rotr(W[i-2], 19) ^ (W[i-2] >>> 10);
        W[i] = (W[i-16] + s0 + W[i-7] + s1) | 0;
      }
      var a=h0,bb=h1,c=h2,d=h3,e=h4,f=h5,g=h6,h=h7;
      for (i = 0; i < 64; i++) {
        var t1 = (h + (rotr(e,6) ^ rotr(e,11) ^ rotr(e,25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var t2 = ((rotr(a,2) ^ rotr(a,13) ^ rotr(a,22)) + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        h=g; g=f; f=e; e=(d+t1)|0; d=c; c=bb; bb=a; a=(t1+t2)|0;
      }
      h0=(h0+a)|0;h1=(h1+bb)|0;h2=(h2+c)|0;h3=(h3+d)|0;h4=(h4+e)|0;h5=(h5+f)|0;h6=(h6+g)|0;h7=(h7+h)|0;
    }
    return h0 >>> 0;
  }
  function solve(form) {
    var bits = parseInt(form.getAttribute("data-pow-bits"), 10) || 0;
    var token = form.elements.form_token.value, status = form.querySelector(".pow-status");
    var button = form.querySelector("button[type=submit]"), nonce = 0;
    var limit = Math.pow(2, 32 - bits);
    button.disabled = true;
    status.textContent = "正在进行安全校验… Running the anti-robot check…";
    (function slice() {
      var end = nonce + 20000;
      for (; nonce < end; nonce++) {
        if (firstWord(token + ":" + nonce) < limit || bits === 0) {
          form.elements.pow.value = String(nonce);
          button.disabled = false;
          status.textContent = "安全校验完成。 Check complete.";
          return;
        }
      }
      setTimeout(slice, 0);
    })();
  }
  window.wenzhengPowFirstWord = firstWord;
  document.querySelectorAll("form[data-pow-bits]").forEach(solve);
})();

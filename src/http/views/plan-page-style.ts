// The plan page's style sheet, and the Content-Security-Policy that lets only it apply (by its hash).
import { createHash } from 'node:crypto';

export const STYLE = `
:root{color-scheme:light;--ink:#1b1b1b;--muted:#4a4a4a;--accent:#0b4f8a;--line:#c5d0db;--soft:#eef4fa;
--good:#0b5a2a;--good-bg:#e3f3e8;--good-line:#8cc7a0;--warn:#7a3b00;--warn-bg:#fdf0e0;--warn-line:#e8b77c}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#fff;color:var(--ink);font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",
"Helvetica Neue",Arial,sans-serif;font-size:1.125rem;line-height:1.6;overflow-wrap:anywhere}
.page{max-width:48rem;margin:0 auto;padding:1rem 1rem 2.5rem}
a{color:var(--accent)}
a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.plan-header{border-bottom:4px solid var(--accent);padding-bottom:.75rem}
.kicker{margin:0;font-weight:700;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;font-size:.9rem}
h1{margin:.2rem 0 .6rem;font-size:1.85rem;line-height:1.2;color:var(--accent)}
h2{margin:2.2rem 0 .8rem;padding-bottom:.3rem;font-size:1.45rem;line-height:1.25;border-bottom:2px solid var(--line)}
h3{margin:0 0 .5rem;font-size:1.18rem;line-height:1.3}
p{margin:0 0 .6rem}
.lead{font-size:1.15rem}
.hint,.by,.empty{color:var(--muted)}
.empty{font-style:italic}
.badges{margin:.2rem 0 .8rem;display:flex;flex-wrap:wrap;gap:.4rem}
.badge{display:inline-block;padding:.05rem .6rem;border:1px solid var(--line);border-radius:1rem;background:var(--soft);
font-size:.95rem;font-weight:600;line-height:1.5}
.badge.good{background:var(--good-bg);border-color:var(--good-line);color:var(--good)}
.badge.warn{background:var(--warn-bg);border-color:var(--warn-line);color:var(--warn)}
nav.toc{margin:1rem 0 0}
nav.toc ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}
nav.toc a{display:inline-block;padding:.3rem .7rem;border:1px solid var(--line);border-radius:.4rem;text-decoration:none;
font-size:1rem}
nav.toc a:hover{background:var(--soft)}
.card{border:1px solid var(--line);border-radius:.6rem;padding:.9rem 1rem;margin:0 0 1rem;background:#fff}
.quote{margin:0 0 1.2rem;padding:.9rem 1.1rem;border-left:6px solid var(--accent);background:var(--soft);
border-radius:0 .6rem .6rem 0;font-size:1.3rem;line-height:1.5}
.quote p{margin:0 0 .4rem}
.quote .by{display:block;font-size:1rem}
.quote .by::before{content:"— "}
dl.facts{margin:0;display:grid;grid-template-columns:1fr;gap:0 1rem}
dl.facts dt{font-weight:700;color:var(--muted);font-size:1rem}
dl.facts dd{margin:0 0 .55rem}
dl.facts dd p:last-child,dl.facts dd ul{margin-bottom:0}
.bullets{margin:0 0 .6rem;padding-left:1.3rem}
.bullets.roomy li{margin-bottom:.5rem}
.bullets.roomy p{margin:0}
.chips{list-style:none;margin:0 0 1rem;padding:0;display:flex;flex-wrap:wrap;gap:.45rem}
.chips li{padding:.15rem .75rem;border:1px solid var(--line);border-radius:1rem;background:var(--soft)}
.agree-agree::before{content:"✓ ";color:var(--good);font-weight:700}
.agree-disagree::before{content:"✗ ";color:var(--warn);font-weight:700}
.agree-pending::before{content:"… ";color:var(--muted);font-weight:700}
.team,.steps,.options{list-style:none;margin:0;padding:0}
.team{display:grid;grid-template-columns:1fr;gap:.6rem}
.team .card{margin:0;padding:.6rem .9rem}
.person .name{display:block;font-weight:700}
.person .role,.person .role-text{display:block}
.person .role-text{color:var(--muted);font-size:1rem}
.steps{counter-reset:step}
.step{position:relative;padding-left:3.2rem}
.step::before{counter-increment:step;content:counter(step);position:absolute;left:.9rem;top:.85rem;width:1.7rem;
height:1.7rem;border-radius:50%;background:var(--accent);color:#fff;font-weight:700;text-align:center;line-height:1.7rem;
font-size:1rem}
.label{margin:.3rem 0 .2rem;font-weight:700;color:var(--muted);font-size:1rem}
.options{display:grid;grid-template-columns:1fr;gap:.6rem;margin-bottom:.9rem}
.option{border:1px solid var(--line);border-radius:.5rem;padding:.6rem .9rem}
.option.chosen{border:3px solid var(--good);background:var(--good-bg)}
.option-title{font-weight:700;margin-bottom:.2rem}
.option-title .badge{display:table;margin-bottom:.3rem}
.plain{list-style:none;margin:0;padding:0}
.pros li::marker{content:"+  ";color:var(--good);font-weight:700}
.cons li::marker{content:"−  ";color:var(--warn);font-weight:700}
.kind{font-weight:700}
.for{display:block;color:var(--muted);font-size:1rem}
.two{display:grid;grid-template-columns:1fr;gap:0 1.5rem}
.page-footer{margin-top:2.5rem;padding-top:.8rem;border-top:2px solid var(--line);color:var(--muted);font-size:1rem}
@media (min-width:40rem){
.page{padding:2rem 1.5rem 3rem}
h1{font-size:2.2rem}
dl.facts{grid-template-columns:minmax(8.5rem,max-content) 1fr}
dl.facts dt{padding-top:.05rem}
.team{grid-template-columns:1fr 1fr}
.options{grid-template-columns:repeat(auto-fit,minmax(16rem,1fr))}
.two{grid-template-columns:1fr 1fr}
}
@media print{
@page{margin:1.6cm 1.4cm}
html{font-size:10.5pt}
body{font-size:1rem;line-height:1.45;color:#000}
.page{max-width:none;padding:0}
nav.toc{display:none}
h1{font-size:20pt;color:#000}
h2{font-size:15pt;margin-top:1.2rem;border-color:#000;break-after:avoid}
h3{font-size:12.5pt;break-after:avoid}
.plan-header{border-color:#000}
.card,.option,.quote,.team li,.bullets li{break-inside:avoid}
.card{border-color:#777}
.quote{background:none;border-color:#000}
.badge,.badge.good,.badge.warn{background:none;color:#000;border-color:#000}
.option.chosen{background:none;border-color:#000}
.chips li{background:none;border-color:#777}
.step::before{background:none;color:#000;border:1px solid #000}
.hint,.by,.empty,.for,.label,.kicker,dl.facts dt,.person .role-text,.page-footer{color:#333}
a{color:#000;text-decoration:none}
}
`;

const STYLE_HASH = `sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}`;

/**
 * The Content-Security-Policy for the plan page: nothing may load or run; only the page's own style element
 * (allowed by its hash) applies. Send it with the page.
 */
export const PLAN_PAGE_CSP = `default-src 'none'; style-src '${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The same policy in the page itself (without frame-ancestors, which a meta element cannot carry), for saved copies. */
export const META_CSP = `default-src 'none'; style-src '${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'`;

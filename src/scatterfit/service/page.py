"""The results page served at / : the jobs with their state and progress (refreshed every 2 s), a form to submit
a solve, and for a finished job its report (ranked hypotheses, overlaid fits and difference curves, chemistry
checks, 3D view of the top structures: report.html of the solve, shown inline) or a refine's fit and summary.

One static page, no build step: the browser keeps the API token in this tab's session storage and sends it as
`Authorization: Bearer` with every call.
"""

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>scatterfit</title>
<style>
body{font-family:sans-serif;margin:0 auto;max-width:1150px;padding:0 12px}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
tr.job{cursor:pointer}tr.job:hover{background:#eef}.queued{color:#777}.running{color:#06c}.done{color:#080}
.failed{color:#c00}.cancelled{color:#a60}#report{width:100%;height:1400px;border:1px solid #ccc}
fieldset{margin:8px 0}#message{color:#c00}
</style></head>
<body>
<h1>scatterfit</h1>
<fieldset><legend>API token</legend>
<input id="token" type="password" size="40" placeholder="the server's token">
<button id="save-token">use</button></fieldset>
<fieldset><legend>Solve a sample</legend>
<form id="submit-form">
<input id="files" type="file" multiple> composition <input id="composition" size="14" placeholder="Ni or Ti O">
Qmax <input id="qmax" size="5" placeholder="Å⁻¹"> label <input id="label" size="14">
<button id="submit" type="submit">submit</button></form>
<div id="message"></div></fieldset>
<h2>Jobs</h2>
<table><thead><tr><th>job</th><th>label</th><th>kind</th><th>state</th><th>progress</th><th>best Rw</th>
<th>submitted</th></tr></thead><tbody id="jobs"></tbody></table>
<h2 id="detail-title"></h2><div id="detail"></div>
<script>
const $=id=>document.getElementById(id);
let selected=null,shown=null;
$('token').value=sessionStorage.getItem('scatterfit-token')||'';
$('save-token').onclick=()=>{sessionStorage.setItem('scatterfit-token',$('token').value.trim());refresh();};
function headers(){return {'Authorization':'Bearer '+(sessionStorage.getItem('scatterfit-token')||'')};}
async function api(path,opts){const r=await fetch(path,Object.assign({headers:headers()},opts||{}));
  if(!r.ok){let d=r.statusText;try{d=(await r.json()).detail;}catch(e){}throw new Error(r.status+': '+d);}
  return r;}
function esc(s){return String(s==null?'':s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;',
  '"':'&quot;',"'":'&#39;'}[c]));}
async function refresh(){
  try{const jobs=(await (await api('/v1/jobs?limit=50')).json()).jobs;$('message').textContent='';
    $('jobs').innerHTML=jobs.map(j=>{const p=j.progress||{};
      const prog=j.state==='running'&&p.total?`${p.step} ${p.done}/${p.total}, ${Math.round(p.elapsed_s||0)} s`+
        (p.eta_s!=null?`, ~${Math.round(p.eta_s)} s left`:''):'';
      return `<tr class="job" data-id="${j.id}"><td>${j.id}</td><td>${esc(j.label)}</td><td>${j.kind}</td>`+
        `<td class="${j.state} state">${j.state}</td><td>${esc(prog)}</td>`+
        `<td>${p.best_rw!=null?p.best_rw.toFixed(4):''}</td>`+
        `<td>${new Date(j.created*1000).toLocaleString()}</td></tr>`;}).join('');
    document.querySelectorAll('tr.job').forEach(tr=>tr.onclick=()=>{selected=tr.dataset.id;shown=null;detail();});
    if(selected)detail();
  }catch(e){$('message').textContent=e.message;}}
async function detail(){
  const j=await (await api('/v1/jobs/'+selected)).json();
  $('detail-title').textContent=`Job ${j.id} (${j.kind}): ${j.state}`;
  if(j.state!=='done'){$('detail').innerHTML=j.error?`<p class="failed">${esc(j.error)}</p>`:
    `<p>${esc((j.progress||{}).text||'waiting')}</p>`;shown=null;return;}
  if(shown===j.id)return;shown=j.id;
  if(j.kind==='solve'){const html=await (await api(`/v1/jobs/${j.id}/report`)).text();
    $('detail').innerHTML='<iframe id="report"></iframe>';$('report').srcdoc=html;}
  else{const s=await (await api(`/v1/jobs/${j.id}/solution`)).json();
    const names=(await (await api(`/v1/jobs/${j.id}/files`)).json()).files.filter(n=>n.endsWith('.png'));
    let out='<pre>'+esc(JSON.stringify(s.terms||s,null,1))+'</pre>';
    for(const n of names){const b=await (await api(`/v1/jobs/${j.id}/files/${n}`)).blob();
      out+=`<img alt="${esc(n)}" style="max-width:100%" src="${URL.createObjectURL(b)}">`;}
    $('detail').innerHTML=out;}}
$('submit-form').onsubmit=async e=>{e.preventDefault();
  const form=new FormData();for(const f of $('files').files)form.append('files',f);
  const req={kind:'solve',composition:$('composition').value,label:$('label').value};
  if($('qmax').value)req.qmax=parseFloat($('qmax').value);
  form.append('request',JSON.stringify(req));
  try{const j=await (await api('/v1/jobs',{method:'POST',body:form})).json();selected=j.id;shown=null;
    $('message').textContent='';refresh();}catch(err){$('message').textContent=err.message;}};
refresh();setInterval(refresh,2000);
</script></body></html>
"""

"""A 3D view of structures for self-contained HTML pages: a canvas and a small inline script (no library, no
network), drag to rotate, wheel to zoom. Atoms are drawn as shaded discs in Jmol colours with covalent radii,
bonds (closer than 1.2 × the covalent radii's sum) as lines, a periodic cell's edges as thin lines; crystals are
shown as their unit cell with the atoms on its faces and corners repeated, as a crystallographer draws them.
"""

from __future__ import annotations

import html
import json

import numpy as np

MAX_ATOMS = 3000  # atoms drawn per structure (a larger model is shown in part, and the caption says so)
BOND_SCALE = 1.2

_SCRIPT = """
(function(){
const views=document.querySelectorAll('canvas.sf-view');
views.forEach(function(cv){
  const m=JSON.parse(cv.dataset.model);const ctx=cv.getContext('2d');
  let rx=-0.5,ry=0.6,zoom=1.0,drag=null;
  const c=[0,0,0];m.xyz.forEach(p=>{c[0]+=p[0];c[1]+=p[1];c[2]+=p[2];});
  c.forEach((v,k)=>c[k]=v/Math.max(m.xyz.length,1));
  let ext=1;m.xyz.forEach(p=>{ext=Math.max(ext,Math.hypot(p[0]-c[0],p[1]-c[1],p[2]-c[2]));});
  function rot(p){let x=p[0]-c[0],y=p[1]-c[1],z=p[2]-c[2];
    let x1=Math.cos(ry)*x+Math.sin(ry)*z,z1=-Math.sin(ry)*x+Math.cos(ry)*z;
    let y1=Math.cos(rx)*y-Math.sin(rx)*z1,z2=Math.sin(rx)*y+Math.cos(rx)*z1;return [x1,y1,z2];}
  function draw(){const w=cv.width,h=cv.height,s=zoom*0.42*Math.min(w,h)/ext;
    ctx.fillStyle='#fff';ctx.fillRect(0,0,w,h);
    const q=m.xyz.map(rot);const X=p=>w/2+s*p[0],Y=p=>h/2-s*p[1];
    ctx.strokeStyle='#999';ctx.lineWidth=1;
    m.cell_edges.forEach(e=>{const a=rot(e[0]),b=rot(e[1]);ctx.beginPath();ctx.moveTo(X(a),Y(a));
      ctx.lineTo(X(b),Y(b));ctx.stroke();});
    ctx.strokeStyle='#555';ctx.lineWidth=Math.max(1,s*0.12);
    m.bonds.forEach(b=>{const a=q[b[0]],d=q[b[1]];ctx.beginPath();ctx.moveTo(X(a),Y(a));
      ctx.lineTo(X(d),Y(d));ctx.stroke();});
    const order=q.map((p,k)=>k).sort((a,b)=>q[a][2]-q[b][2]);
    order.forEach(k=>{const p=q[k],r=Math.max(1.5,s*m.radius[k]*0.5),col=m.color[k];
      const g=ctx.createRadialGradient(X(p)-r/3,Y(p)-r/3,r/5,X(p),Y(p),r);
      g.addColorStop(0,'#fff');g.addColorStop(1,col);ctx.fillStyle=g;ctx.beginPath();
      ctx.arc(X(p),Y(p),r,0,2*Math.PI);ctx.fill();});}
  cv.addEventListener('mousedown',e=>{drag=[e.clientX,e.clientY];});
  window.addEventListener('mouseup',()=>{drag=null;});
  cv.addEventListener('mousemove',e=>{if(!drag)return;ry+=(e.clientX-drag[0])*0.01;rx+=(e.clientY-drag[1])*0.01;
    drag=[e.clientX,e.clientY];draw();});
  cv.addEventListener('wheel',e=>{e.preventDefault();zoom*=e.deltaY<0?1.1:1/1.1;draw();},{passive:false});
  draw();});
})();
"""


def _unit_cell_atoms(structure) -> tuple[np.ndarray, np.ndarray]:
    """(positions [N, 3] Å, atomic numbers [N]) of a periodic structure's atoms in its cell, those on faces,
    edges and corners repeated on the opposite ones."""
    cell = structure.cell.detach().cpu().numpy()
    frac = structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    frac = frac - np.floor(frac + 1e-6)
    numbers = structure.numbers.cpu().numpy()
    shifts = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    out_f, out_z = [], []
    for f, z in zip(frac, numbers):
        for s in shifts:
            g = f + s
            if np.all(g <= 1 + 1e-6) and (np.all(s == 0) or np.all(np.abs(f[s == 1]) < 1e-6)):
                out_f.append(g)
                out_z.append(z)
    return np.array(out_f) @ cell, np.array(out_z)


def view_model(structure) -> dict:
    """The JSON model the script draws: {xyz, color, radius, bonds, cell_edges, shown, total}."""
    from ase.data import covalent_radii
    from ase.data.colors import jmol_colors

    if structure.cell is not None and all(structure.pbc):
        xyz, z = _unit_cell_atoms(structure)
    else:
        xyz, z = structure.positions.detach().cpu().numpy(), structure.numbers.cpu().numpy()
    total = len(z)
    if total > MAX_ATOMS:  # the atoms nearest the centre
        keep = np.argsort(np.linalg.norm(xyz - xyz.mean(0), axis=1))[:MAX_ATOMS]
        xyz, z = xyz[keep], z[keep]
    radius = covalent_radii[z]
    bonds = []
    if len(z) <= MAX_ATOMS:
        from scipy.spatial import cKDTree

        pairs = cKDTree(xyz).query_pairs(BOND_SCALE * 2 * float(radius.max()), output_type="ndarray")
        if len(pairs):
            d = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
            ok = d < BOND_SCALE * (radius[pairs[:, 0]] + radius[pairs[:, 1]])
            bonds = pairs[ok].tolist()
    edges = []
    if structure.cell is not None and all(structure.pbc):
        cell = structure.cell.detach().cpu().numpy()
        corners = {(i, j, k): np.array([i, j, k]) @ cell for i in (0, 1) for j in (0, 1) for k in (0, 1)}
        for key, p in corners.items():
            for axis in range(3):
                if key[axis] == 0:
                    other = tuple(1 if a == axis else key[a] for a in range(3))
                    edges.append([p.round(4).tolist(), corners[other].round(4).tolist()])
    colors = ["#%02x%02x%02x" % tuple(int(255 * v) for v in jmol_colors[k]) for k in z]
    return {"xyz": xyz.round(4).tolist(), "color": colors, "radius": radius.round(3).tolist(), "bonds": bonds,
            "cell_edges": edges, "shown": int(len(z)), "total": int(total)}


def structure_views(items: list, size: int = 360) -> str:
    """HTML for [(caption, Structure)]: one canvas each and the script that draws them (include once per page)."""
    figures = []
    for caption, structure in items:
        model = view_model(structure)
        note = "" if model["shown"] == model["total"] else f" ({model['shown']} of {model['total']} atoms shown)"
        figures.append(f'<figure class="sf-figure"><canvas class="sf-view" width="{size}" height="{size}" '
                       f"data-model='{html.escape(json.dumps(model), quote=True)}'></canvas>"
                       f"<figcaption>{html.escape(caption)}{note}; drag to rotate, wheel to zoom</figcaption></figure>")
    if not figures:
        return ""
    return "".join(figures) + f"<script>{_SCRIPT}</script>"

(function(){
  function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){return parseFloat(v);}return td.textContent.trim().toLowerCase();}
  document.querySelectorAll('table.sortable').forEach(function(t){
    t.querySelectorAll('th').forEach(function(th,i){
      th.classList.add('sortable');th.setAttribute('tabindex','0');
      var dir=1;
      var sort=function(){var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
          if(typeof x==='number'&&typeof y==='number'){return (x-y)*dir;}
          return String(x).localeCompare(String(y))*dir;});
        rows.forEach(function(r){body.appendChild(r);});dir=-dir;};
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'){sort();}});
    });
  });
  var figs=document.querySelectorAll('figure.chart');var bad=[];
  figs.forEach(function(f){var s=f.querySelector('svg');
    if(!s){bad.push(f.id);return;}
    var b=s.getBBox();var marks=s.querySelectorAll('polyline,rect,circle,path,line').length;
    if(!(b.width>0&&b.height>0&&marks>3)){bad.push(f.id);}});
  document.documentElement.setAttribute('data-charts',bad.length?('failed '+bad.join(' ')):('ok '+figs.length));
  if(bad.length){console.error('charts that did not render: '+bad.join(', '));}
})();

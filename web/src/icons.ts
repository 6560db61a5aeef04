// Point-of-interest icons, bundled as SVG: a disc in the category's colour (read from the style, so map, icons and
// legend agree) with a white pictogram, rasterised at twice the CSS size and added to the map with `addImage`.

import type { Map as MlMap } from 'maplibre-gl';

const W = '#fff';

/** Pictograms on a 24×24 grid; `C` stands for the disc's colour where a shape cuts into the pictogram. */
const pictograms: Record<string, string> = {
  grocery: `<path d="M3.5 5h2.6l2 9.2h9.6l1.9-6.7H7" stroke="${W}" stroke-width="2" fill="none" stroke-linejoin="round" stroke-linecap="round"/><circle cx="9.6" cy="18" r="1.7" fill="${W}"/><circle cx="16.4" cy="18" r="1.7" fill="${W}"/>`,
  school: `<path d="M12 4.5 1.8 9.7 12 14.9l10.2-5.2z" fill="${W}"/><path d="M6 12.2v4.2c2.8 2.6 9.2 2.6 12 0v-4.2" stroke="${W}" stroke-width="2" fill="none"/><path d="M21 10v5.5" stroke="${W}" stroke-width="1.6"/>`,
  childcare: `<circle cx="12" cy="6.2" r="3" fill="${W}"/><path d="M7.2 11.5h9.6l-1.6 4.6h-1.4l-.6 4.6h-3.4l-.6-4.6H8.8z" fill="${W}"/>`,
  healthcare: `<path d="M9.6 4h4.8v5.6H20v4.8h-5.6V20H9.6v-5.6H4V9.6h5.6z" fill="${W}"/>`,
  pharmacy: `<g transform="rotate(-45 12 12)"><rect x="3.5" y="8.3" width="17" height="7.4" rx="3.7" fill="none" stroke="${W}" stroke-width="2"/><path d="M12 8.3h4.8a3.7 3.7 0 0 1 0 7.4H12z" fill="${W}"/></g>`,
  park: `<path d="M12 2.8 6 11.2h3.2L5.6 16.8h12.8l-3.6-5.6H18z" fill="${W}"/><rect x="10.8" y="16.5" width="2.4" height="4.7" fill="${W}"/>`,
  public_transport_stop: `<rect x="5.5" y="3.5" width="13" height="14.5" rx="2.4" fill="${W}"/><rect x="7.5" y="6" width="9" height="5.2" rx=".6" fill="C"/><circle cx="9" cy="14.6" r="1.2" fill="C"/><circle cx="15" cy="14.6" r="1.2" fill="C"/><rect x="6.8" y="18" width="2.4" height="2.6" fill="${W}"/><rect x="14.8" y="18" width="2.4" height="2.6" fill="${W}"/>`,
  restaurant_cafe: `<path d="M4.5 9.5h11.5v4.6a4.4 4.4 0 0 1-4.4 4.4H8.9a4.4 4.4 0 0 1-4.4-4.4z" fill="${W}"/><path d="M16 10.6h1.6a2.1 2.1 0 0 1 0 4.2H16" stroke="${W}" stroke-width="1.7" fill="none"/><path d="M8 3.8c-.9 1.2.9 2 0 3.6M12 3.8c-.9 1.2.9 2 0 3.6" stroke="${W}" stroke-width="1.5" fill="none" stroke-linecap="round"/>`,
  culture: `<path d="M12 3 2.8 8h18.4z" fill="${W}"/><rect x="4.8" y="9.3" width="2.4" height="8" fill="${W}"/><rect x="10.8" y="9.3" width="2.4" height="8" fill="${W}"/><rect x="16.8" y="9.3" width="2.4" height="8" fill="${W}"/><rect x="2.8" y="18.3" width="18.4" height="2.4" fill="${W}"/>`,
  sport: `<circle cx="12" cy="12" r="7.6" fill="none" stroke="${W}" stroke-width="2"/><path d="M4.6 12h14.8M12 4.4c-3.4 4.2-3.4 11 0 15.2M12 4.4c3.4 4.2 3.4 11 0 15.2" stroke="${W}" stroke-width="1.5" fill="none"/>`,
  services: `<circle cx="12" cy="6.3" r="2" fill="${W}"/><rect x="10.3" y="9.8" width="3.4" height="9.6" rx="1" fill="${W}"/>`,
  other: `<circle cx="12" cy="12" r="3.6" fill="${W}"/>`,
};

export const iconCategories = Object.keys(pictograms).filter((k) => k !== 'other');

/** The SVG of one icon: disc, white ring and pictogram. */
export function iconSvg(category: string, color: string, px = 48): string {
  const body = (pictograms[category] ?? pictograms.other!).replaceAll('"C"', `"${color}"`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${px}" height="${px}" viewBox="0 0 24 24"><circle cx="12" cy="12" r="11" fill="${color}" stroke="${W}" stroke-width="1.4"/><g transform="translate(3.6 3.6) scale(.7)">${body}</g></svg>`;
}

function rasterise(svg: string, px: number): Promise<ImageData> {
  return new Promise((resolve, reject) => {
    const img = new Image(px, px);
    img.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = px;
      canvas.height = px;
      const ctx = canvas.getContext('2d');
      if (!ctx) return reject(new Error('no 2d canvas'));
      ctx.drawImage(img, 0, 0, px, px);
      resolve(ctx.getImageData(0, 0, px, px));
    };
    img.onerror = () => reject(new Error('icon could not be drawn'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
}

/** Draws the `poi-{category}` images (and `poi-other`) in the given colours, ready for `addImage`. */
export async function drawPoiIcons(colors: Record<string, string>, other: string): Promise<Map<string, ImageData>> {
  const px = 48; // 24 CSS pixels at pixelRatio 2
  const entries = [...iconCategories.map((c) => [c, colors[c] ?? other] as const), ['other', other] as const];
  const out = new Map<string, ImageData>();
  await Promise.all(
    entries.map(async ([cat, color]) => {
      out.set(`poi-${cat}`, await rasterise(iconSvg(cat, color, px), px));
    }),
  );
  return out;
}

/** Adds drawn icons to the map (before its tiles ask for them). */
export function addIcons(map: MlMap, icons: Map<string, ImageData>): void {
  for (const [name, data] of icons) {
    if (map.hasImage(name)) map.removeImage(name);
    map.addImage(name, data, { pixelRatio: 2 });
  }
}

// UN/CEFACT common codes (NGSI-LD `unitCode`) to the symbols people read. Codes not listed are shown as they are.

const symbols: Record<string, string> = {
  MTR: 'm',
  KMT: 'km',
  CMT: 'cm',
  MMT: 'mm',
  MTK: 'm²',
  KMK: 'km²',
  HAR: 'ha',
  MTQ: 'm³',
  GQ: 'µg/m³',
  GP: 'mg/m³',
  '59': 'ppm',
  '61': 'ppb',
  KMH: 'km/h',
  MTS: 'm/s',
  CEL: '°C',
  KEL: 'K',
  P1: '%',
  '2N': 'dB',
  DB: 'dB',
  SEC: 's',
  MIN: 'min',
  HUR: 'h',
  DAY: 'd',
  ANN: 'a',
  KWH: 'kWh',
  MWH: 'MWh',
  WTT: 'W',
  KWT: 'kW',
  MAW: 'MW',
  KGM: 'kg',
  TNE: 't',
  LTR: 'l',
  A97: 'hPa',
  HP: 'hPa',
  E32: 'veh/h',
  C62: '',
  // "accounting unit": what is counted (vehicles, visitors) is named by the attribute
  E50: '',
  H87: 'pcs',
};

export function unitSymbol(code: string | undefined): string {
  if (!code) return '';
  return Object.hasOwn(symbols, code) ? symbols[code]! : code;
}

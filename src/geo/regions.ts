// The region catalogue that ships with Meridian: the regions of the big public clouds'
// registries (Azure's names), with display names and coordinates (degrees), so that
// routing can compute distances between clients and replicas.

export interface Region {
  name: string;
  displayName: string;
  latitude: number;
  longitude: number;
}

const catalogue: Region[] = [
  { name: "westus", displayName: "West US", latitude: 37.783, longitude: -122.417 },
  { name: "westus2", displayName: "West US 2", latitude: 47.233, longitude: -119.852 },
  { name: "westus3", displayName: "West US 3", latitude: 33.448, longitude: -112.074 },
  { name: "westcentralus", displayName: "West Central US", latitude: 40.89, longitude: -110.234 },
  { name: "centralus", displayName: "Central US", latitude: 41.5908, longitude: -93.6208 },
  {
    name: "northcentralus",
    displayName: "North Central US",
    latitude: 41.8819,
    longitude: -87.6278,
  },
  { name: "southcentralus", displayName: "South Central US", latitude: 29.4167, longitude: -98.5 },
  { name: "eastus", displayName: "East US", latitude: 37.3719, longitude: -79.8164 },
  { name: "eastus2", displayName: "East US 2", latitude: 36.6681, longitude: -78.3889 },
  { name: "canadacentral", displayName: "Canada Central", latitude: 43.653, longitude: -79.383 },
  { name: "canadaeast", displayName: "Canada East", latitude: 46.817, longitude: -71.217 },
  { name: "brazilsouth", displayName: "Brazil South", latitude: -23.55, longitude: -46.633 },
  { name: "northeurope", displayName: "North Europe", latitude: 53.3478, longitude: -6.2597 },
  { name: "westeurope", displayName: "West Europe", latitude: 52.3667, longitude: 4.9 },
  { name: "uksouth", displayName: "UK South", latitude: 50.941, longitude: -0.799 },
  { name: "ukwest", displayName: "UK West", latitude: 53.427, longitude: -3.084 },
  { name: "francecentral", displayName: "France Central", latitude: 46.3772, longitude: 2.373 },
  {
    name: "germanywestcentral",
    displayName: "Germany West Central",
    latitude: 50.1109,
    longitude: 8.6821,
  },
  {
    name: "switzerlandnorth",
    displayName: "Switzerland North",
    latitude: 47.4515,
    longitude: 8.5646,
  },
  { name: "norwayeast", displayName: "Norway East", latitude: 59.9139, longitude: 10.7522 },
  { name: "swedencentral", displayName: "Sweden Central", latitude: 60.6749, longitude: 17.1413 },
  { name: "polandcentral", displayName: "Poland Central", latitude: 52.2333, longitude: 21.0167 },
  { name: "italynorth", displayName: "Italy North", latitude: 45.4689, longitude: 9.1811 },
  { name: "uaenorth", displayName: "UAE North", latitude: 25.2667, longitude: 55.3167 },
  {
    name: "southafricanorth",
    displayName: "South Africa North",
    latitude: -25.7313,
    longitude: 28.2184,
  },
  { name: "centralindia", displayName: "Central India", latitude: 18.5822, longitude: 73.9197 },
  { name: "southindia", displayName: "South India", latitude: 12.9822, longitude: 80.1636 },
  { name: "japaneast", displayName: "Japan East", latitude: 35.68, longitude: 139.77 },
  { name: "japanwest", displayName: "Japan West", latitude: 34.6939, longitude: 135.5022 },
  { name: "koreacentral", displayName: "Korea Central", latitude: 37.5665, longitude: 126.978 },
  { name: "eastasia", displayName: "East Asia", latitude: 22.267, longitude: 114.188 },
  { name: "southeastasia", displayName: "Southeast Asia", latitude: 1.283, longitude: 103.833 },
  { name: "australiaeast", displayName: "Australia East", latitude: -33.86, longitude: 151.2094 },
  {
    name: "australiasoutheast",
    displayName: "Australia Southeast",
    latitude: -37.8136,
    longitude: 144.9631,
  },
];

const byName = new Map(catalogue.map((region) => [region.name, region]));

export function allRegions(): readonly Region[] {
  return catalogue;
}

/** The catalogue entry of a region name, or undefined for a name it does not know. */
export function findRegion(name: string): Region | undefined {
  return byName.get(name);
}

const earthRadiusKm = 6371;

/** Great-circle distance between two points, in kilometres (haversine). */
export function distanceKm(
  a: { latitude: number; longitude: number },
  b: { latitude: number; longitude: number },
): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * earthRadiusKm * Math.asin(Math.min(1, Math.sqrt(h)));
}

trainmeter_embed_file(${TM_GENERATED_DIR}/country_carbon_intensity.cpp kCountryIntensityTsv
                      ${PROJECT_SOURCE_DIR}/data/country_carbon_intensity.tsv)
trainmeter_embed_file(${TM_GENERATED_DIR}/cloud_region_carbon_intensity.cpp kRegionIntensityTsv
                      ${PROJECT_SOURCE_DIR}/data/cloud_region_carbon_intensity.tsv)
trainmeter_embed_file(${TM_GENERATED_DIR}/electricity_prices.cpp kElectricityPricesTsv
                      ${PROJECT_SOURCE_DIR}/data/electricity_prices.tsv)
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/intensity.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prices.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/forecast.cpp
  ${CMAKE_CURRENT_LIST_DIR}/settings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/carbon.cpp
  ${TM_GENERATED_DIR}/country_carbon_intensity.cpp
  ${TM_GENERATED_DIR}/cloud_region_carbon_intensity.cpp
  ${TM_GENERATED_DIR}/electricity_prices.cpp)
